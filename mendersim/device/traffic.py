"""Which parts of a device's server traffic run: per profile, overridden from the command line.

`--mendersim-traffic tier=micro,churn=off,deviceconfig=on,deviceconnect=on` overrides what every
profile says; a profile sets its own with `tier:`, `inventory_churn:`, `deviceconfig:`,
`deviceconnect:` and `update_control_map:`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mendersim.errors import ConfigError

TIERS: tuple[str, ...] = ("standard", "micro", "system")  # the C++ client's device tiers
SWITCHES: tuple[str, ...] = ("churn", "deviceconfig", "deviceconnect", "update_control_map")
_ON, _OFF = ("on", "true", "yes", "1"), ("off", "false", "no", "0")


@dataclass(frozen=True, slots=True)
class Traffic:
    tier: str = "standard"
    churn: bool = True  # inventory churn runs when the profile has rules
    deviceconfig: bool = False  # the mender-configure add-on: configuration fetched and reported
    deviceconnect: bool = False  # mender-connect: a websocket kept open to deviceconnect
    update_control_map: bool = False  # maps honoured as the Go client 3.5 does (C++ has none)

    def overridden(self, overrides: tuple[tuple[str, str], ...]) -> Traffic:
        changed: dict[str, str | bool] = {}
        for name, value in overrides:
            changed[name] = value if name == "tier" else value in _ON
        return dataclasses.replace(self, **changed)


STANDARD_TRAFFIC = Traffic()


def parse_overrides(text: str, where: str = "--mendersim-traffic") -> tuple[tuple[str, str], ...]:
    """`tier=micro,churn=off` → pairs; ConfigError naming the bad item."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = (s.strip() for s in item.partition("="))
        if not sep:
            raise ConfigError(where, f"{item!r} is not name=value")
        if name == "tier":
            if value not in TIERS:
                raise ConfigError(where, f"tier {value!r} is not one of {', '.join(TIERS)}")
        elif name in SWITCHES:
            if value.lower() not in _ON + _OFF:
                raise ConfigError(where, f"{name}={value!r}: use on or off")
            value = "on" if value.lower() in _ON else "off"
        else:
            known = ", ".join(("tier", *SWITCHES))
            raise ConfigError(where, f"unknown traffic {name!r} (known: {known})")
        pairs.append((name, value))
    return tuple(pairs)
