"""Loading industry profiles and fleet configs: YAML → schema check → semantic checks → defaults.

Profile lookup, in order, for a group's `profile:` value:
1. a value ending in `.yaml`/`.yml` or containing `/` is a path, relative to the fleet file;
2. a name is looked up as `<fleet file dir>/../industries/<name>.yaml`,
3. then as `<profiles root>/industries/<name>.yaml`, where the profiles root is the
   `MENDERSIM_PROFILES_DIR` environment variable or else the `profiles/` folder next to the package.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mendersim.errors import ConfigError
from mendersim.fleet import identity
from mendersim.fleet.schema import FAILURE_MODES, FLEET_SCHEMA, PROFILE_SCHEMA, validate
from mendersim.paths import profiles_root
from mendersim.telemetry import spec as telemetry_spec

PROFILE_DEFAULTS: dict[str, Any] = {
    "description": "",
    "inventory": {},
    "quirks": [],
    "intervals": {"update_poll": 1800, "inventory_poll": 28800, "retry_poll": 300},
    "durations": {"install": {"min": 60, "max": 300}, "reboot": {"min": 30, "max": 90}},
    "update": {"success_rate": 0.8, "failure_modes": dict.fromkeys(FAILURE_MODES, 1)},
}
FLEET_DEFAULTS: dict[str, Any] = {
    "tenant_token": "",
    "seed": 0,
    "logging": {"file": "simulator.log", "level": "INFO", "max_bytes": 10 << 20, "backups": 5},
}


@dataclass(frozen=True, slots=True)
class Group:
    """One `groups[]` entry with its profile resolved to a name."""

    index: int
    profile: str
    count: int


@dataclass(frozen=True, slots=True)
class FleetConfig:
    path: Path
    document: dict[str, Any]  # validated, defaults filled, group profiles as resolved names
    groups: tuple[Group, ...]
    profiles: dict[str, dict[str, Any]]  # name → validated profile document, defaults filled

    @property
    def seed(self) -> int:
        return int(self.document["seed"])


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors name the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(where, f"YAML syntax error: {problem}") from None
    if not isinstance(document, dict):
        raise ConfigError(str(path), "expected a mapping of keys to values at the top level")
    return document


def _with_defaults(document: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(document))
    for key, value in defaults.items():
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = _with_defaults(merged[key], value)
    return merged


def load_profile(path: Path) -> dict[str, Any]:
    """Load and check one industry profile; returns the document with defaults filled."""
    document = load_yaml(path)
    validate(document, PROFILE_SCHEMA, str(path))
    _check_profile(document, str(path))
    document = _with_defaults(document, PROFILE_DEFAULTS)
    document["identity"].setdefault("extra", {})
    _check_failure_weights(document, str(path))
    return document


def _check_failure_weights(document: Mapping[str, Any], file: str) -> None:
    """A failing update must be able to pick a failure mode: all-zero weights would turn every
    drawn failure into a success without a word."""
    update = document["update"]
    base = update["failure_modes"]
    if update["success_rate"] < 1 and not any(w > 0 for w in base.values()):
        raise ConfigError(
            f"{file}: update.failure_modes",
            "every weight is 0 while success_rate is below 1; give one mode a weight above 0 "
            "or set success_rate to 1",
        )
    for i, quirk in enumerate(document.get("quirks", [])):
        weights = {**base, **quirk.get("failure_weights", {})}
        rate = update["success_rate"] + quirk.get("success_rate_delta", 0)
        if rate < 1 and not any(w > 0 for w in weights.values()):
            raise ConfigError(
                f"{file}: quirks[{i}].failure_weights",
                "leaves every failure mode at weight 0 while failures can still happen",
            )


def _check_profile(document: Mapping[str, Any], file: str) -> None:
    """What a schema cannot say: reserved names, ranges, quirk attributes, network names."""
    inventory = document.get("inventory", {})
    if "manufacturer" in inventory:
        raise ConfigError(
            f"{file}: inventory.manufacturer", "reserved: the identity sets each device's maker"
        )
    extra = set(document["identity"].get("extra", {}))
    generated = {"manufacturer", *identity.ID_KEYS[document["identity"]["kind"]]}
    if extra & generated:
        raise ConfigError(
            f"{file}: identity.extra.{sorted(extra & generated)[0]}",
            "reserved: the identity generator sets it",
        )
    for name, span in document.get("durations", {}).items():
        if span["min"] > span["max"]:
            raise ConfigError(f"{file}: durations.{name}", "min is greater than max")
    known = generated | extra | set(inventory) | {"device_type"}
    for i, quirk in enumerate(document.get("quirks", [])):
        for key in quirk["match"]:
            if key not in known:
                raise ConfigError(
                    f"{file}: quirks[{i}].match.{key}",
                    f"not an attribute of this profile (known: {', '.join(sorted(known))})",
                )
    _check_network(document["network"]["profile"], file)
    telemetry_spec.from_profile(document, where=f"{file}: telemetry")


def _check_network(name: str, file: str) -> None:
    """Once network profiles are shipped, a profile must name one of them."""
    folder = profiles_root() / "network"
    available = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    if available and name not in available:
        raise ConfigError(
            f"{file}: network.profile",
            f"unknown network profile {name!r} (available: {', '.join(available)})",
        )


def _is_path(value: str) -> bool:
    return value.endswith((".yaml", ".yml")) or "/" in value


def resolve_profile(value: str, fleet_file: Path) -> Path:
    """Where a group's `profile:` value points (see the module docstring)."""
    if _is_path(value):
        path = Path(value)
        return path if path.is_absolute() else fleet_file.parent / path
    candidates = [
        fleet_file.parent.parent / "industries" / f"{value}.yaml",
        profiles_root() / "industries" / f"{value}.yaml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c.parent) for c in candidates)
    raise ConfigError(str(fleet_file), f"unknown profile {value!r} (searched {searched})")


def load_fleet(path: str | Path) -> FleetConfig:
    """Load a fleet config with every profile it names, all validated."""
    fleet_file = Path(path)
    document = load_yaml(fleet_file)
    validate(document, FLEET_SCHEMA, str(fleet_file))
    document = _with_defaults(document, FLEET_DEFAULTS)
    profiles: dict[str, dict[str, Any]] = {}
    owners: dict[str, int] = {}
    groups: list[Group] = []
    for i, entry in enumerate(document["groups"]):
        where = f"{fleet_file}: groups[{i}].profile"
        try:
            profile_file = resolve_profile(entry["profile"], fleet_file)
        except ConfigError as exc:
            raise ConfigError(where, exc.what) from None
        profile = load_profile(profile_file)
        name = profile["name"]
        if not _is_path(entry["profile"]) and name != entry["profile"]:
            raise ConfigError(f"{profile_file}: name", f"{name!r} does not match the file name")
        if name in profiles and profiles[name] != profile:
            raise ConfigError(
                where,
                f"a different profile named {name!r} is already used by groups[{owners[name]}]",
            )
        profiles[name] = profile
        owners.setdefault(name, i)
        groups.append(Group(i, name, entry["count"]))
        entry["profile"] = name
    identity.check_capacity(
        [(profiles[g.profile]["identity"], g.index) for g in groups], str(fleet_file)
    )
    return FleetConfig(fleet_file, document, tuple(groups), profiles)
