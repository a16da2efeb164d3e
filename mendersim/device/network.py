"""Network profiles (profiles/network/*.yaml): the link a simulated device sits behind."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from mendersim.errors import ConfigError
from mendersim.paths import profiles_root

_RATE = {"type": ["number", "null"], "exclusiveMinimum": 0}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "down_kbps", "up_kbps", "rtt_ms", "loss"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "figures": {"enum": ["link", "corrected"]},
        "down_kbps": _RATE,
        "up_kbps": _RATE,
        "rtt_ms": {"type": "number", "minimum": 0},
        "setup_round_trips": {"type": "integer", "minimum": 1, "maximum": 10},
        "loss": {"type": "number", "minimum": 0, "maximum": 0.5},
        "outage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["every_s", "duration_s"],
            "properties": {
                "every_s": {"type": "number", "exclusiveMinimum": 0},
                "duration_s": {"type": "number", "minimum": 0},
            },
        },
        "max_download_bytes": {"type": ["integer", "null"], "minimum": 1},
    },
}


@dataclass(frozen=True, slots=True)
class Outage:
    every_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """Link figures; None rates mean unlimited. Shared by every device using the profile."""

    name: str
    down_kbps: float | None = None
    up_kbps: float | None = None
    rtt_ms: float = 0.0
    setup_round_trips: int = 2  # TCP handshake + request/response on plain HTTP
    loss: float = 0.0
    outage: Outage | None = None
    max_download_bytes: int | None = None

    @property
    def shapes(self) -> bool:
        """Whether requests need the shaping wrapper at all (rates are applied by downloads)."""
        return bool(self.rtt_ms or self.up_kbps or self.loss or self.outage)


NO_SHAPING = NetworkProfile(name="none")


def load_network_profile(name_or_path: str, directory: Path | None = None) -> NetworkProfile:
    """A profile by name (in `directory`, default profiles/network/) or by path to a YAML file."""
    return _load(name_or_path, (directory or profiles_root() / "network").resolve())


@functools.lru_cache(maxsize=64)
def _load(name_or_path: str, directory: Path) -> NetworkProfile:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = directory / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        raise ConfigError(
            str(path), f"no network profile {name_or_path!r} (known: {', '.join(known) or 'none'})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}".replace("\n", " ")) from None
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ConfigError(f"{path}: {where}", exc.message) from None
    outage = data.get("outage")
    if outage and outage["duration_s"] >= outage["every_s"]:
        raise ConfigError(f"{path}: outage", "duration_s must be shorter than every_s")
    return NetworkProfile(
        name=data["name"],
        down_kbps=data["down_kbps"],
        up_kbps=data["up_kbps"],
        rtt_ms=data["rtt_ms"],
        setup_round_trips=data.get("setup_round_trips", 2),
        loss=data["loss"],
        outage=Outage(outage["every_s"], outage["duration_s"]) if outage else None,
        max_download_bytes=data.get("max_download_bytes"),
    )
