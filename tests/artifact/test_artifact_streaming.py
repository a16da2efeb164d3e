"""The reader works on a download as it arrives: any chunking, network errors untouched."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.artifact.writer import write_artifact
from mendersim.device.transport import TransportError
from mendersim.fleet import keys


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
def signed_artifact(tmp_path: Path, ecdsa_key: keys.PrivateKey) -> bytes:
    path = tmp_path / "a.mender"
    write_artifact(path, name="s", device_types=["d"], payload_size=50_000, sign_key=ecdsa_key,
                   compression="zstd")  # fmt: skip
    return path.read_bytes()


@pytest.mark.parametrize("chunk_size", [1, 7, 511, 513, 65536])
def test_any_chunking_reads_the_same(
    signed_artifact: bytes, ecdsa_key: keys.PrivateKey, chunk_size: int
) -> None:
    whole = read_artifact(io.BytesIO(signed_artifact), verify_key=ecdsa_key.public_key())
    chunked = read_artifact(
        _chunks(signed_artifact, chunk_size), verify_key=ecdsa_key.public_key(), device_type="d"
    )
    assert chunked == whole
    assert chunked.size == len(signed_artifact)
    assert chunked.signature == "verified"


def test_bytes_are_one_chunk(signed_artifact: bytes) -> None:
    assert read_artifact(signed_artifact).size == len(signed_artifact)  # type: ignore[arg-type]


def test_empty_chunks_are_skipped(signed_artifact: bytes) -> None:
    def with_gaps() -> Iterator[bytes]:
        for chunk in _chunks(signed_artifact, 1000):
            yield b""
            yield chunk

    assert read_artifact(with_gaps()).size == len(signed_artifact)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.9])
def test_transport_error_propagates_unchanged(signed_artifact: bytes, fraction: float) -> None:
    failure = TransportError("connection_reset", "connection reset by peer")

    def dropping() -> Iterator[bytes]:
        yield from _chunks(signed_artifact[: int(len(signed_artifact) * fraction)], 4096)
        raise failure

    with pytest.raises(TransportError) as caught:
        read_artifact(dropping())
    assert caught.value is failure


def test_stream_ending_early_is_an_artifact_error(signed_artifact: bytes) -> None:
    with pytest.raises(ArtifactError) as caught:
        read_artifact(_chunks(signed_artifact[: len(signed_artifact) // 2], 4096))
    assert caught.value.kind == "truncated"


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd", "none"])
def test_transport_error_inside_compressed_members(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "a.mender"
    write_artifact(path, name="n", device_types=["d"], payload_size=200_000,
                   compression=compression)  # fmt: skip
    data = path.read_bytes()
    with tarfile.open(path) as outer:
        header_at = outer.getmembers()[2].offset_data
    for cut in (header_at + 50, len(data) // 2):  # inside the header, inside the payload

        def dropping(cut: int = cut) -> Iterator[bytes]:
            yield from _chunks(data[:cut], 100)
            raise TransportError("timeout")

        with pytest.raises(TransportError, match="timeout"):
            read_artifact(dropping())
