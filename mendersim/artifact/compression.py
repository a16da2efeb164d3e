"""The compressions Mender allows for header.tar.<ext> and data/NNNN.tar.<ext>."""

from __future__ import annotations

import gzip
import lzma
from typing import BinaryIO

import zstandard

from mendersim.artifact.format import ArtifactError

# Name used on the command line and in ArtifactInfo → member-name suffix.
EXTENSIONS: dict[str, str] = {"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}
_BY_EXTENSION = {ext: name for name, ext in EXTENSIONS.items()}

# Exceptions the decompressors raise on corrupt input (mapped to ArtifactError by the reader).
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # gzip.BadGzipFile and zlib failures surface as OSError subclasses
    EOFError,
    lzma.LZMAError,
    zstandard.ZstdError,
)


def check_compression(name: str) -> str:
    if name not in EXTENSIONS:
        raise ArtifactError(
            f"unknown compression {name!r} (expected one of {', '.join(EXTENSIONS)})",
            kind="unsupported",
        )
    return name


def name_of_suffix(suffix: str) -> str:
    """`.gz` → `gzip`; the suffix comes from a member name already matched by format regexes."""
    return _BY_EXTENSION[suffix]


class _Unclosed:
    """Keeps a compressor from closing the file it writes into (the caller owns it)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def write(self, data: bytes) -> int:
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        self._raw.flush()


def compressor(name: str, raw: BinaryIO) -> BinaryIO:
    """A writable stream compressing into `raw`; closing it finishes the stream, not `raw`.

    gzip uses level 6 as Go's default (mender-artifact) and mtime 0, so the same seed gives
    the same artifact bytes.
    """
    if name == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)  # type: ignore[arg-type]
    if name == "xz":
        return lzma.LZMAFile(raw, mode="wb", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
    if name == "zstd":
        return zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)  # type: ignore[return-value]
    return _Unclosed(raw)  # type: ignore[return-value]


def decompressor(name: str, raw: BinaryIO) -> BinaryIO:
    """A readable stream of the uncompressed bytes of `raw`, read sequentially."""
    if name == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if name == "xz":
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    if name == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(  # type: ignore[return-value]
            raw, read_across_frames=True, closefd=False
        )
    return raw
