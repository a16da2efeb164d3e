"""Realistic device identities (Mender `id_data`), deterministic and unique within a fleet.

Each identity has a *unique code*: the group's slot among the fleet's groups of the same kind
times MAX_GROUP_COUNT plus the device's index, sent through a seeded affine permutation of the
kind's code space. Distinct (slot, index) pairs give distinct codes, so identities never collide
however many groups share a profile, yet consecutive devices do not look consecutive. Everything
else (maker, model year, ...) is drawn from the per-device random generator the caller passes.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from mendersim.errors import ConfigError
from mendersim.fleet.schema import MAX_GROUP_COUNT
from mendersim.fleet.weighted import Weighted

# id_data keys each kind produces (profiles may add `extra` keys).
ID_KEYS: dict[str, tuple[str, ...]] = {
    "vin": ("vin",),
    "mac": ("mac",),
    "udi": ("serial", "udi_di"),
    "serial": ("serial",),
}

# ISO 3779 / 49 CFR 565: letters I, O, Q never appear; each character has a value for the check.
VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Model-year characters repeat every 30 years from 1980 (A); U, Z and 0 are never used.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
_VIN_SERIAL = 10**6  # positions 12-17: six digits


def vin_check_digit(vin: str) -> str:
    """The ISO 3779 check character of a 17-character VIN (its position 9 is ignored)."""
    if len(vin) != 17:
        raise ValueError(f"a VIN has 17 characters, not {len(vin)}: {vin!r}")
    try:
        total = sum(_VIN_VALUES[c] * w for c, w in zip(vin.upper(), _VIN_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not a VIN character") from None
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def model_year_code(year: int) -> str:
    return _YEAR_CODES[(year - 1980) % 30]


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit to append to `digits` (GTIN-8/12/13/14, SSCC, ...)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def code_space(spec: Mapping[str, Any]) -> int:
    """How many distinct unique codes the identity spec can express."""
    kind = spec["kind"]
    if kind == "vin":
        return len(VIN_ALPHABET) * _VIN_SERIAL  # plant character × serial
    if kind == "mac":
        return 1 << 24  # the NIC half of a MAC address
    return min(m.get("serial_radix", 10) ** m["serial_digits"] for m in spec["manufacturers"])


def check_capacity(groups: Sequence[tuple[Mapping[str, Any], int]], file: str) -> None:
    """Refuse a fleet whose groups of one kind need more codes than the kind can express."""
    slots: dict[str, int] = {}
    for spec, group_index in groups:
        slot = slots.get(spec["kind"], 0)
        slots[spec["kind"]] = slot + 1
        if (slot + 1) * MAX_GROUP_COUNT > code_space(spec):
            raise ConfigError(
                f"{file}: groups[{group_index}]",
                f"too many groups with {spec['kind']} identities: each reserves "
                f"{MAX_GROUP_COUNT:,} codes and the profile's format has {code_space(spec):,}",
            )


def kind_slots(kinds: Sequence[str]) -> list[int]:
    """Each group's slot among the groups of its identity kind, in group order."""
    seen: dict[str, int] = {}
    slots = []
    for kind in kinds:
        slots.append(seen.get(kind, 0))
        seen[kind] = slots[-1] + 1
    return slots


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "big")


def device_rng(seed: int, group: int, index: int) -> random.Random:
    """The random generator every per-device draw uses, fixed by (seed, group, index)."""
    return random.Random(_digest_int(f"device/{seed}/{group}/{index}"))


class _Permutation:
    """x → (a·x + b) mod n with gcd(a, n) = 1: a bijection of [0, n) chosen by the seed."""

    __slots__ = ("a", "b", "n")

    def __init__(self, n: int, key: str) -> None:
        value = _digest_int(key)
        self.n = n
        self.b = value % n
        a = (value >> 64) % n or 1
        while math.gcd(a, n) != 1:
            a += 1
        self.a = a

    def __call__(self, x: int) -> int:
        return (self.a * x + self.b) % self.n


class _SerialFormat:
    """A maker's serial format; spreads the kind's codes over the format's own wider space.

    The spreading permutation depends only on the format, so makers sharing a format still
    map distinct codes to distinct serials.
    """

    __slots__ = ("prefix", "radix", "spread", "width")

    def __init__(self, maker: Mapping[str, Any], seed: int) -> None:
        self.prefix = maker.get("serial_prefix", "")
        self.radix = maker.get("serial_radix", 10)
        self.width = maker["serial_digits"]
        key = f"serial/{seed}/{self.prefix}/{self.width}/{self.radix}"
        self.spread = _Permutation(self.radix**self.width, key)

    def __call__(self, code: int) -> str:
        value = self.spread(code)
        body = f"{value:0{self.width}X}" if self.radix == 16 else f"{value:0{self.width}d}"
        return self.prefix + body


class IdentityGenerator:
    """Identities of one group: compiled once per (profile, slot), called per device."""

    def __init__(self, spec: Mapping[str, Any], *, seed: int, slot: int) -> None:
        self.kind: str = spec["kind"]
        self._spec = spec
        self._makers = Weighted(
            [
                (m, _SerialFormat(m, seed) if "serial_digits" in m else None)
                for m in spec["manufacturers"]
            ],
            [m["weight"] for m in spec["manufacturers"]],
        )
        self._extra = {
            key: Weighted([c["value"] for c in choices], [c["weight"] for c in choices])
            for key, choices in spec.get("extra", {}).items()
        }
        self._base = slot * MAX_GROUP_COUNT
        self._permute = _Permutation(code_space(spec), f"identity/{seed}/{self.kind}")
        self._seed = seed

    def make(self, index: int, rng: random.Random, device_type: str) -> tuple[dict[str, str], str]:
        """(id_data, manufacturer name) of the device at `index` in the group."""
        if not 0 <= index < MAX_GROUP_COUNT:
            raise ValueError(f"device index {index} outside [0, {MAX_GROUP_COUNT})")
        code = self._permute(self._base + index)
        maker, serial = self._makers.pick(rng)
        if self.kind == "vin":
            id_data = {"vin": self._vin(maker, code, rng)}
        elif self.kind == "mac":
            nic = code.to_bytes(3, "big").hex(":")
            id_data = {"mac": f"{maker['oui'].lower()}:{nic}"}
        elif self.kind == "udi":
            id_data = {"serial": serial(code), "udi_di": self._udi_di(maker, device_type)}
        else:
            id_data = {"serial": serial(code)}
        for key, choice in self._extra.items():
            id_data[key] = str(choice.pick(rng))
        return id_data, maker["name"]

    def _vin(self, maker: Mapping[str, Any], code: int, rng: random.Random) -> str:
        plant, serial = divmod(code, _VIN_SERIAL)
        vds = "".join([VIN_ALPHABET[int(rng.random() * len(VIN_ALPHABET))] for _ in range(5)])
        year = model_year_code(rng.choice(self._spec["model_years"]))
        vin = f"{maker['wmi']}{vds}0{year}{VIN_ALPHABET[plant]}{serial:06d}"
        return vin[:8] + vin_check_digit(vin) + vin[9:]

    def _udi_di(self, maker: Mapping[str, Any], device_type: str) -> str:
        """GTIN-14 of the device model: indicator 0, company prefix, item reference, check."""
        prefix = maker["company_prefix"]
        width = 12 - len(prefix)
        item = _digest_int(f"udi-item/{self._seed}/{prefix}/{device_type}") % 10**width
        body = f"0{prefix}{item:0{width}d}"
        return body + gs1_check_digit(body)
