"""Deterministic decisions without per-device random state.

A `random.Random` costs about 2.5 KB; with 100,000 devices that is 250 MB for nothing. Every
decision a device makes is instead a pure function of (seed, device id, purpose, key), so a run is
reproducible under its seed and a device holds no generator between decisions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_SCALE = float(1 << 64)


def _digest(seed: int, device_id: str, purpose: str, key: str, size: int) -> bytes:
    text = f"{seed}\x1f{device_id}\x1f{purpose}\x1f{key}".encode()
    return hashlib.blake2b(text, digest_size=size).digest()


def fraction(seed: int, device_id: str, purpose: str, key: str = "") -> float:
    """A uniform number in [0, 1) fixed by its arguments."""
    return int.from_bytes(_digest(seed, device_id, purpose, key, 8), "big") / _SCALE


def fraction_pair(seed: int, device_id: str, purpose: str, key: str = "") -> tuple[float, float]:
    """Two independent uniform numbers in [0, 1) from one digest: half the hashing of two calls."""
    digest = _digest(seed, device_id, purpose, key, 16)
    return int.from_bytes(digest[:8], "big") / _SCALE, int.from_bytes(digest[8:], "big") / _SCALE


def between(low: float, high: float, u: float) -> float:
    """Map a fraction onto [low, high)."""
    return low + (high - low) * u


def weighted_choice(weights: Sequence[tuple[str, float]], u: float) -> str:
    """Pick a name from (name, weight) pairs with the fraction `u`."""
    total = sum(weight for _, weight in weights)
    target = u * total
    for name, weight in weights:
        if target < weight:
            return name
        target -= weight
    return weights[-1][0]
