"""Durations, sizes and rates as users write them on the command line (`50ms`, `1w`, `2MiB`)."""

from __future__ import annotations

import re

from mendersim.errors import ConfigError

_DURATION_UNITS = {
    "": 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_duration(text: str, where: str) -> float:
    """Seconds from `250ms`, `30s`, `5m`, `2h`, `1d`, `1w` or a bare number of seconds."""
    match = _NUMBER_UNIT.match(str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _DURATION_UNITS:
        raise ConfigError(where, f"{text!r} is not a duration (e.g. 50ms, 30s, 5m, 2h, 1w)")
    return float(match.group(1)) * _DURATION_UNITS[unit]


def parse_size(text: str, where: str, *, zero_ok: bool = False) -> int:
    """Bytes from `1048576`, `512KiB`, `2MB`, `1GiB`; a trailing `/s` is allowed for rates.
    `zero_ok`: 0 is a size too (an empty artifact payload)."""
    raw = str(text)
    body = raw[:-2] if raw.lower().endswith("/s") else raw
    match = _NUMBER_UNIT.match(body)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _SIZE_UNITS:
        raise ConfigError(where, f"{text!r} is not a size (e.g. 65536, 512KiB, 2MB)")
    value = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(where, f"{text!r} must be positive")
    return value


def parse_probability(text: str, where: str) -> float:
    """A share of requests in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(where, f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(where, f"{text!r} is not between 0 and 1")
    return value
