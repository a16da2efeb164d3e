"""Inventory churn: attributes that change over time the way a real device's do.

A profile's `inventory_churn` is a list of rules, each for one attribute. At every inventory
cycle each rule may change its attribute (`chance` per cycle); some rules also react to events
(a reboot reconnects the modem, a successful update brings a new kernel). The client still
skips a PUT whose body did not change, so the inventory service sees the write rate the rules
imply. Every decision is a hash of (seed, device, rule, cycle) as elsewhere in the engine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mendersim.device import decide
from mendersim.errors import ConfigError

KINDS: tuple[str, ...] = ("uptime", "walk", "pick", "address", "after_update")

_WEIGHTED = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "value": {"type": ["string", "number"]},
            "weight": {"type": "number", "exclusiveMinimum": 0},
        },
        "required": ["value", "weight"],
        "additionalProperties": False,
    },
}

# JSON Schema of a profile's `inventory_churn:` list (plugged into the profile schema).
CHURN_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "attribute": {"type": "string", "minLength": 1},
            "kind": {"enum": list(KINDS)},
            "chance": {"type": "number", "minimum": 0, "maximum": 1},
            "start": {"type": "number"},
            "step": {"type": "number", "exclusiveMinimum": 0},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "values": _WEIGHTED,
            "network": {"type": "string", "minLength": 1},
        },
        "required": ["attribute", "kind"],
        "allOf": [
            {"if": {"properties": {"kind": {"const": "walk"}}}, "then": {"required": ["step"]}},
            {
                "if": {"properties": {"kind": {"enum": ["pick", "after_update"]}}},
                "then": {"required": ["values"]},
            },
            {
                "if": {"properties": {"kind": {"const": "address"}}},
                "then": {"required": ["network"]},
            },
        ],
        "additionalProperties": False,
    },
}


@dataclass(frozen=True, slots=True)
class ChurnRule:
    attribute: str
    kind: str
    chance: float = 1.0  # probability of a change per inventory cycle
    start: float | None = None  # walk: value before the first change (else the baseline)
    step: float = 0.0  # walk: largest change per cycle, either way
    low: float | None = None
    high: float | None = None
    values: tuple[tuple[Any, float], ...] = ()  # pick, after_update: weighted values
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # address


def rules_from_profile(value: Any, where: str) -> tuple[ChurnRule, ...]:
    """The profile's rules (shape checked by CHURN_SCHEMA); ConfigError for what it cannot say."""
    if not value:
        return ()
    rules = []
    for index, item in enumerate(value):
        here = f"{where}: inventory_churn[{index}]"
        network = None
        if item.get("network") is not None:
            try:
                network = ipaddress.ip_network(str(item["network"]), strict=False)
            except ValueError as exc:
                raise ConfigError(f"{here}.network", str(exc)) from None
        low, high = item.get("min"), item.get("max")
        if low is not None and high is not None and low > high:
            raise ConfigError(here, "min is greater than max")
        rules.append(
            ChurnRule(
                attribute=str(item["attribute"]),
                kind=str(item["kind"]),
                chance=float(item.get("chance", 1.0)),
                start=item.get("start"),
                step=float(item.get("step", 0.0)),
                low=low,
                high=high,
                values=tuple((v["value"], float(v["weight"])) for v in item.get("values") or ()),
                network=network,
            )
        )
    return tuple(rules)


class InventoryChurn:
    """One device's churned attributes; small (a dict of current values and two numbers)."""

    __slots__ = ("_boot", "_cycle", "_device_id", "_rules", "_seed", "values")

    def __init__(
        self,
        rules: Sequence[ChurnRule],
        baseline: Mapping[str, Any],
        *,
        seed: int,
        device_id: str,
        now: float,
    ) -> None:
        self._rules = rules
        self._seed = seed
        self._device_id = device_id
        self._boot = now
        self._cycle = 0
        self.values: dict[str, Any] = {}
        for rule in rules:
            if rule.kind == "uptime":
                continue
            if rule.kind == "walk" and rule.start is not None:
                self.values[rule.attribute] = _number(rule.start)
            elif rule.attribute in baseline:
                self.values[rule.attribute] = baseline[rule.attribute]
            else:
                self.values[rule.attribute] = self._draw(rule, "start")

    def attributes(self, now: float, time_scale: float) -> dict[str, Any]:
        """The churned attributes at this inventory cycle (advances the cycle)."""
        self._cycle += 1
        key = str(self._cycle)
        for rule in self._rules:
            if rule.kind in ("uptime", "after_update"):
                continue
            if rule.chance < 1.0 and self._fraction(rule, "chance", key) >= rule.chance:
                continue
            if rule.kind == "walk":
                self.values[rule.attribute] = self._walk(rule, key)
            else:
                self.values[rule.attribute] = self._draw(rule, key)
        current = dict(self.values)
        for rule in self._rules:
            if rule.kind == "uptime":
                current[rule.attribute] = int((now - self._boot) / time_scale)
        return current

    def rebooted(self, now: float) -> None:
        """Uptime restarts; the modem reconnects and may get a new address."""
        self._boot = now
        self._cycle += 1
        for rule in self._rules:
            if rule.kind == "address":
                self.values[rule.attribute] = self._draw(rule, f"reboot{self._cycle}")

    def updated(self, deployment_id: str) -> None:
        """A deployment succeeded: attributes the new image brings are drawn again."""
        for rule in self._rules:
            if rule.kind == "after_update":
                self.values[rule.attribute] = self._draw(rule, deployment_id)

    def _fraction(self, rule: ChurnRule, purpose: str, key: str) -> float:
        return decide.fraction(
            self._seed, self._device_id, f"churn:{rule.attribute}:{purpose}", key
        )

    def _draw(self, rule: ChurnRule, key: str) -> Any:
        u = self._fraction(rule, "value", key)
        if rule.kind == "address" and rule.network is not None:
            size = rule.network.num_addresses
            offset = 1 + int(u * max(size - 2, 1))  # neither the network nor broadcast address
            return str(rule.network.network_address + offset)
        if rule.kind == "walk":
            return self._walk(rule, key)
        return decide.weighted_choice(rule.values, u)

    def _walk(self, rule: ChurnRule, key: str) -> float | int:
        current = self.values.get(rule.attribute, rule.start or 0)
        if not isinstance(current, (int, float)) or isinstance(current, bool):
            current = rule.start or 0
        delta = rule.step * (2.0 * self._fraction(rule, "step", key) - 1.0)
        value = current + delta
        if rule.low is not None:
            value = max(rule.low, value)
        if rule.high is not None:
            value = min(rule.high, value)
        return _number(value)


def _number(value: float) -> float | int:
    """Whole numbers stay integers, as inventory scripts print them."""
    return round(value) if float(value).is_integer() or abs(value) >= 100 else value
