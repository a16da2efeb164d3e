"""How the devices of one industry profile behave: timers, durations, failures, network.

One Behaviour is built per profile and shared by all its devices; everything per device is
derived on demand from the device record and the run's seed (see decide.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mendersim.device import decide
from mendersim.device.churn import ChurnRule, rules_from_profile
from mendersim.device.failures import FAILURE_MODES
from mendersim.device.network import NO_SHAPING, NetworkProfile, load_network_profile
from mendersim.device.traffic import STANDARD_TRAFFIC, Traffic
from mendersim.errors import ConfigError
from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord

DEFAULT_SUCCESS_RATE = 0.8
DEFAULT_FAILURE_MODES = tuple((mode, 1.0) for mode in FAILURE_MODES)


@dataclass(frozen=True, slots=True)
class Span:
    """Seconds drawn uniformly in [low, high]."""

    low: float
    high: float

    def pick(self, u: float) -> float:
        return decide.between(self.low, self.high, u)


@dataclass(frozen=True, slots=True)
class Quirk:
    match: tuple[tuple[str, Any], ...]
    success_rate_delta: float
    failure_weights: tuple[tuple[str, float], ...]

    def applies_to(self, attributes: Mapping[str, Any]) -> bool:
        return all(attributes.get(key) == value for key, value in self.match)


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str
    update_poll: float = 1800.0
    inventory_poll: float = 28800.0
    retry_poll: float = 300.0
    install: Span = Span(60.0, 240.0)
    reboot: Span = Span(30.0, 90.0)
    success_rate: float = DEFAULT_SUCCESS_RATE
    failure_modes: tuple[tuple[str, float], ...] = DEFAULT_FAILURE_MODES
    quirks: tuple[Quirk, ...] = ()
    network: NetworkProfile = NO_SHAPING
    down_kbps: float | None = None  # the device's download rate; None = unthrottled
    up_kbps: float | None = None
    artifact_verify_key: keys.PublicKey | None = None  # artifacts must be signed with it
    traffic: Traffic = STANDARD_TRAFFIC
    churn: tuple[ChurnRule, ...] = ()

    @classmethod
    def from_profile(
        cls, profile: Mapping[str, Any], *, network_profiles_dir: Path | None = None
    ) -> Behaviour:
        """Read the engine's part of an industry profile (validated upstream for its shape)."""
        name = str(profile.get("name", "profile"))
        where = f"profile {name}"
        intervals = _mapping(profile, "intervals", where)
        durations = _mapping(profile, "durations", where)
        update = _mapping(profile, "update", where)
        network_section = _mapping(profile, "network", where)
        network = load_network_profile(
            str(network_section.get("profile", "none")), network_profiles_dir
        )
        override = _mapping(network_section, "bandwidth_kbps", f"{where}: network")
        modes = _failure_weights(update.get("failure_modes"), f"{where}: update.failure_modes")
        return cls(
            name=name,
            update_poll=_seconds(intervals, "update_poll", 1800, where),
            inventory_poll=_seconds(intervals, "inventory_poll", 28800, where),
            retry_poll=_seconds(intervals, "retry_poll", 300, where),
            install=_span(durations, "install", Span(60, 240), where),
            reboot=_span(durations, "reboot", Span(30, 90), where),
            success_rate=_rate(update.get("success_rate", DEFAULT_SUCCESS_RATE), where),
            failure_modes=modes or DEFAULT_FAILURE_MODES,
            quirks=tuple(
                _quirk(q, f"{where}: quirks[{i}]")
                for i, q in enumerate(profile.get("quirks") or ())
            ),
            network=network,
            down_kbps=_kbps(override.get("down", network.down_kbps), where),
            up_kbps=_kbps(override.get("up", network.up_kbps), where),
            artifact_verify_key=_verify_key(profile.get("artifact_verify_key"), where),
            traffic=Traffic(
                tier=str(profile.get("tier", "standard")),
                deviceconfig=bool(profile.get("deviceconfig", False)),
                deviceconnect=bool(profile.get("deviceconnect", False)),
                update_control_map=bool(profile.get("update_control_map", False)),
            ),
            churn=rules_from_profile(profile.get("inventory_churn"), where),
        )

    def failure_for(self, record: DeviceRecord, deployment_id: str, seed: int) -> str | None:
        """The failure mode this device meets in this deployment, or None for success."""
        rate = self.success_rate
        weights = dict(self.failure_modes)
        if self.quirks:
            attributes = record.attributes()
            for quirk in self.quirks:
                if quirk.applies_to(attributes):
                    rate += quirk.success_rate_delta
                    weights.update(quirk.failure_weights)
        u = decide.fraction(seed, record.device_id, "outcome", deployment_id)
        if u < min(max(rate, 0.0), 1.0):
            return None
        choices = [(mode, w) for mode, w in weights.items() if w > 0]
        if not choices:
            return None
        pick = decide.fraction(seed, record.device_id, "failure", deployment_id)
        return decide.weighted_choice(choices, pick)


def _mapping(section: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = section.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {key}", "must be a mapping")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(where, f"{value!r} is not a number")
    return float(value)


def _seconds(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = _number(section.get(key, default), f"{where}: {key}")
    if value <= 0:
        raise ConfigError(f"{where}: {key}", f"{value:g} must be above 0 seconds")
    return value


def _span(section: Mapping[str, Any], key: str, default: Span, where: str) -> Span:
    value = section.get(key)
    if value is None:
        return default
    if not isinstance(value, Mapping) or not {"min", "max"} <= set(value):
        raise ConfigError(f"{where}: durations.{key}", "needs min and max (seconds)")
    low = _number(value["min"], f"{where}: durations.{key}.min")
    high = _number(value["max"], f"{where}: durations.{key}.max")
    if not 0 <= low <= high:
        raise ConfigError(f"{where}: durations.{key}", f"need 0 <= min <= max, got {low}..{high}")
    return Span(low, high)


def _rate(value: Any, where: str) -> float:
    rate = _number(value, f"{where}: update.success_rate")
    if not 0 <= rate <= 1:
        raise ConfigError(f"{where}: update.success_rate", f"{rate} is not between 0 and 1")
    return rate


def _kbps(value: Any, where: str) -> float | None:
    if value is None:
        return None
    rate = _number(value, f"{where}: network.bandwidth_kbps")
    if rate <= 0:
        raise ConfigError(f"{where}: network.bandwidth_kbps", f"{rate:g} must be above 0")
    return rate


def _failure_weights(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(where, "must map failure modes to weights")
    weights = []
    for mode, weight in value.items():
        if mode not in FAILURE_MODES:
            raise ConfigError(
                where, f"unknown failure mode {mode!r} (known: {', '.join(FAILURE_MODES)})"
            )
        w = _number(weight, f"{where}.{mode}")
        if w < 0:
            raise ConfigError(f"{where}.{mode}", "weight must not be negative")
        weights.append((mode, w))
    return tuple(weights)


def _quirk(value: Any, where: str) -> Quirk:
    if not isinstance(value, Mapping) or not isinstance(value.get("match"), Mapping):
        raise ConfigError(where, "needs a match mapping")
    return Quirk(
        match=tuple(value["match"].items()),
        success_rate_delta=_number(
            value.get("success_rate_delta", 0), f"{where}.success_rate_delta"
        ),
        failure_weights=_failure_weights(value.get("failure_weights"), f"{where}.failure_weights"),
    )


def _verify_key(value: Any, where: str) -> keys.PublicKey | None:
    """The artifact verification key: inline PEM or a path to a PEM file."""
    if value is None:
        return None
    where = f"{where}: artifact_verify_key"
    if not isinstance(value, str):
        raise ConfigError(where, "must be a PEM string or a file path")
    if "-----BEGIN" in value:
        pem = value.encode("ascii")
    else:
        path = Path(value).expanduser()
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(where, f"cannot read {path}: {exc.strerror}") from None
    try:
        return keys.load_public(pem)
    except keys.InvalidKeyError as exc:
        raise ConfigError(where, str(exc)) from None
