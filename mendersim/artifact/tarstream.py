"""Writing tar members one after another into any writable stream, as Go's archive/tar does.

tarfile pads every archive to 10 KiB records; mender-artifact's tars end right after the two
zero blocks, so the header tar is 3 KiB, not 10. tarfile still encodes each member header.
"""

from __future__ import annotations

import tarfile
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
_COPY_SIZE = 1 << 20


def write_member(out: BinaryIO, name: str, data: bytes | BinaryIO, size: int, mode: int) -> None:
    """One member of `size` bytes taken from `data` (bytes or a readable stream)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    out.write(info.tobuf(format=tarfile.PAX_FORMAT))
    if isinstance(data, bytes):
        out.write(data)
        copied = len(data)
    else:
        copied = 0
        while copied < size and (chunk := data.read(min(_COPY_SIZE, size - copied))):
            out.write(chunk)
            copied += len(chunk)
    if copied != size:
        raise ValueError(f"tar member {name}: {copied} bytes given, {size} announced")
    if size % BLOCK:
        out.write(bytes(BLOCK - size % BLOCK))


def write_end(out: BinaryIO) -> None:
    """The end-of-archive marker: two zero blocks."""
    out.write(bytes(2 * BLOCK))
