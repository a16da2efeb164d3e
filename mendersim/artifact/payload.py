"""Deterministic payload bytes: same seed, same bytes, whatever the chunk size asked for.

Each 64 KiB block is half pseudo-random bytes and half zeros, so payloads compress to about half
their size, like a real root filesystem image, while generating at hundreds of MB/s.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

BLOCK_SIZE = 65536
_RANDOM_PART = BLOCK_SIZE // 2
_ZEROS = bytes(BLOCK_SIZE - _RANDOM_PART)


def payload_chunks(size: int, seed: int = 0) -> Iterator[bytes]:
    """Yield `size` bytes in blocks of at most BLOCK_SIZE."""
    if size < 0:
        raise ValueError(f"payload size must not be negative, got {size}")
    rng = random.Random(seed)
    remaining = size
    while remaining > 0:
        block = rng.randbytes(_RANDOM_PART) + _ZEROS
        if remaining < BLOCK_SIZE:
            block = block[:remaining]
        remaining -= len(block)
        yield block
