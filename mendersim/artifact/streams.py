"""A readable file over a binary stream or an iterator of chunks, counting (and hashing) it.

tarfile and the decompressors want `read(n)`; downloads and the payload generator give chunks.
Exceptions raised by the iterator (a dropped download raises TransportError) pass through
unchanged, so callers can tell a network failure from a defective artifact.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

DRAIN_SIZE = 65536


class ChunkReader(io.RawIOBase):
    def __init__(self, source: BinaryIO | Iterable[bytes], *, hashed: bool = False) -> None:
        super().__init__()
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = [bytes(source)]  # a whole artifact in memory is one chunk, not many ints
        self._stream: BinaryIO | None = source if hasattr(source, "read") else None  # type: ignore[assignment]
        self._chunks: Iterator[bytes] | None = (
            None if self._stream is not None else iter(source)  # type: ignore[arg-type]
        )
        self._pending = memoryview(b"")
        self.sha = hashlib.sha256() if hashed else None
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._stream is not None:
            data = self._stream.read(len(view))
            n = len(data)
            view[:n] = data
            if self.sha is not None:
                self.sha.update(data)
        else:
            while not self._pending:
                chunk = next(self._chunks, None)  # type: ignore[arg-type]
                if chunk is None:
                    return 0
                if self.sha is not None:
                    self.sha.update(chunk)
                self._pending = memoryview(chunk)
            n = min(len(view), len(self._pending))
            view[:n] = self._pending[:n]
            self._pending = self._pending[n:]
        self.count += n
        return n

    def drain(self) -> str | None:
        """Read to the end; return the hex SHA-256 of everything read if hashing."""
        buffer = bytearray(DRAIN_SIZE)
        while self.readinto(buffer):
            pass
        return self.sha.hexdigest() if self.sha is not None else None
