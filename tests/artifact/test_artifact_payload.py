"""Generated payloads: exact size, reproducible from the seed, compressible like a real image."""

from __future__ import annotations

import zlib

import pytest

from mendersim.artifact.payload import BLOCK_SIZE, payload_chunks


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 17])
def test_exact_size_in_bounded_chunks(size: int) -> None:
    chunks = list(payload_chunks(size, seed=1))
    assert sum(map(len, chunks)) == size
    assert all(0 < len(chunk) <= BLOCK_SIZE for chunk in chunks)


def test_seed_decides_the_bytes() -> None:
    first = b"".join(payload_chunks(200_000, seed=42))
    assert first == b"".join(payload_chunks(200_000, seed=42))
    assert first != b"".join(payload_chunks(200_000, seed=43))
    assert b"".join(payload_chunks(1000, seed=42)) == first[:1000]


def test_compresses_to_about_half() -> None:
    data = b"".join(payload_chunks(1_000_000, seed=0))
    assert 0.4 < len(zlib.compress(data, 6)) / len(data) < 0.6


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        list(payload_chunks(-1))
