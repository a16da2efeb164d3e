"""Update control maps as the Go client 3.5.3 honours them (app/updatecontrolmap/, app/state.go,
app/updatemanager.go); the C++ client (4.x, 5.x) has none.

A device that advertises `update_control_map: true` in the v2 next request gets the deployment's
map in the answer. Before ArtifactInstall_Enter, ArtifactReboot_Enter and ArtifactCommit_Enter it
fetches the map again and asks it what to do: continue, pause (report `pause_before_*` once, then
wait and fetch again at the map's half-life, at most a poll interval away) or fail. After each
query a state's action becomes its `on_action_executed`. A map expires twice the poll interval
after its last fetch, and an expired map answers `on_map_expire`; but the client fetches a server
map before every query and keeps its retries (which end in failure) until a fetch succeeds, so
for server maps expiry never decides: it is not modelled, `on_map_expire` is only validated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

STATES = ("ArtifactInstall_Enter", "ArtifactReboot_Enter", "ArtifactCommit_Enter")
ACTIONS = ("continue", "force_continue", "pause", "fail")
ON_MAP_EXPIRE = ("continue", "force_continue", "fail")
PAUSE_STATUS = {
    "ArtifactInstall_Enter": "pause_before_installing",
    "ArtifactReboot_Enter": "pause_before_rebooting",
    "ArtifactCommit_Enter": "pause_before_committing",
}
_MAP_KEYS = {"id", "priority", "states"}
_STATE_KEYS = {"action", "on_map_expire", "on_action_executed"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ControlMapError(ValueError):
    """A map the Go client refuses; the message is its text."""


@dataclass(slots=True)
class Rule:
    """One state's instructions, with the Go client's defaults filled in (Sanitize)."""

    action: str
    on_map_expire: str
    on_action_executed: str

    @classmethod
    def parse(cls, data: Any) -> Rule:
        if not isinstance(data, dict) or set(data) - _STATE_KEYS:
            raise ControlMapError("Update Control Map contains unsupported fields")
        for key, allowed in (
            ("action", ACTIONS),
            ("on_map_expire", ON_MAP_EXPIRE),
            ("on_action_executed", ACTIONS),
        ):
            value = data.get(key, "")
            if value != "" and value not in allowed:
                raise ControlMapError(f'invalid value "{value}"')
        action = data.get("action") or "continue"
        return cls(
            action=action,
            on_map_expire=data.get("on_map_expire") or ("fail" if action == "pause" else action),
            on_action_executed=data.get("on_action_executed") or action,
        )

    def is_default(self) -> bool:
        return (self.action, self.on_map_expire, self.on_action_executed) == ("continue",) * 3


def check_map(data: Any) -> dict[str, Rule]:
    """The states of a map as the Go client's UnmarshalJSON validates and sanitizes it, without
    the id check (the server fills the id in); ControlMapError on the first defect."""
    if not isinstance(data, dict) or set(data) - _MAP_KEYS:
        raise ControlMapError("Update Control Map contains unsupported fields")
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -10 <= priority <= 10:
        raise ControlMapError(
            f"invalid Priority {priority!r}, value must be in the range [-10, 10]"
        )
    states = data.get("states") or {}
    if not isinstance(states, dict):
        raise ControlMapError("Update Control Map contains unsupported fields")
    for name in states:
        if name not in STATES:
            raise ControlMapError(f'invalid value "{name}"')
    rules = {name: Rule.parse(value) for name, value in states.items()}
    return {name: rule for name, rule in rules.items() if not rule.is_default()}


class ControlMap:
    """The deployment's map on the device: its rules and when to fetch it again (device clock)."""

    __slots__ = ("refresh_at", "rules")

    def __init__(self, rules: dict[str, Rule], now: float, lifetime: float) -> None:
        self.rules = rules
        self.refresh_at = now + lifetime / 2  # the Go client's HalfWayTime

    @classmethod
    def parse(cls, data: Any, deployment_id: str, now: float, lifetime: float) -> ControlMap:
        """A map from the server; the id must be a UUID and equal the deployment's."""
        if not isinstance(data, dict):
            raise ControlMapError("Update Control Map contains unsupported fields")
        map_id = data.get("id", "")
        if not isinstance(map_id, str) or not _UUID.fullmatch(map_id.lower()):
            raise ControlMapError("ID must be a UUID")
        if map_id != deployment_id:
            raise ControlMapError(
                f"Mismatched control map ID: {map_id} and deployment ID: {deployment_id}"
            )
        return cls(check_map(data), now, lifetime)

    def query(self, state: str) -> str:
        """continue, pause or fail (QueryAndUpdate with one map: force_continue continues)."""
        rule = self.rules.get(state)
        if rule is None:
            return "continue"
        action = rule.action
        rule.action = rule.on_action_executed
        return action if action in ("pause", "fail") else "continue"
