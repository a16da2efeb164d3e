"""An artifact download as the client does it: streamed, paced to the device's bandwidth,
resumed with HTTP Range after a dropped connection, never held in memory.

`Download.chunks()` is the iterator handed to the artifact reader; pacing, progress, resuming and
the simulated download failures all happen inside it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator

from mendersim.device import steps
from mendersim.device.devlog import DeploymentLog
from mendersim.device.transport import Clock, StreamResponse, Transport, TransportError

log = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024
RESUME_ATTEMPTS = 10  # the client's RetryDownloadCount default
RESUME_WAIT_S = 60.0  # the client's resumer waits a fixed minute between attempts
_HEX = b"0123456789abcdef"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)\s*-\s*(\d+)\s*/\s*(\d+|\*)")


class DownloadError(Exception):
    """The download cannot go on; the message is what the device logs."""


class Download:
    """One artifact download. Reads `offset`, `seconds` afterwards for statistics."""

    __slots__ = (
        "_broken",
        "_corrupt_at",
        "_quarter",
        "break_at",
        "clock",
        "corrupt_manifest",
        "deployment_id",
        "device_id",
        "devlog",
        "max_bytes",
        "offset",
        "rate_kbps",
        "seconds",
        "time_scale",
        "total",
        "transport",
        "uri",
    )

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        uri: str,
        devlog: DeploymentLog,
        *,
        device_id: str,
        deployment_id: str,
        rate_kbps: float | None,
        time_scale: float,
        max_bytes: int | None = None,
        break_at: float | None = None,
        corrupt_manifest: bool = False,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.uri = uri
        self.devlog = devlog
        self.device_id = device_id
        self.deployment_id = deployment_id
        self.rate_kbps = rate_kbps
        self.time_scale = time_scale
        self.max_bytes = max_bytes
        self.break_at = break_at  # fraction of the artifact after which the link resets for good
        self.corrupt_manifest = corrupt_manifest  # flip one manifest digit, as line noise would
        self.offset = 0
        self.total: int | None = None
        self.seconds = 0.0
        self._quarter = 0
        self._broken: str | None = None
        self._corrupt_at: int | None = None

    def chunks(self) -> Iterator[bytes]:
        """The artifact's bytes, resumed across dropped connections."""
        started = self.clock.now()
        resumes = 0
        try:
            while True:
                try:
                    yield from self._attempt()
                    return
                except TransportError as exc:
                    resumes += 1
                    self._wait_before_resume(exc, resumes)
        finally:
            self.seconds = self.clock.now() - started

    def _wait_before_resume(self, exc: TransportError, attempt: int) -> None:
        self._note("info", f"Will try to resume after error {exc}")
        if attempt > RESUME_ATTEMPTS:
            self._note(
                "error",
                "Giving up on resuming the download: Exponential backoff: "
                "Max number of retries reached",
            )
            raise exc
        self._note(
            "info",
            f"Resuming download after {RESUME_WAIT_S:.0f} seconds. "
            f"Retry {attempt}/{RESUME_ATTEMPTS}",
        )
        self.clock.sleep(RESUME_WAIT_S * self.time_scale)

    def _attempt(self) -> Iterator[bytes]:
        if self._broken:  # the link stays down: every further attempt fails the same way
            raise TransportError("connection_reset", self._broken)
        headers = {}
        if self.offset:
            end = f"{self.total - 1}" if self.total else ""
            headers["Range"] = f"bytes={self.offset}-{end}"
        with self.transport.stream(steps.DOWNLOAD, self.uri, headers=headers) as response:
            self._check_answer(response)
            yield from self._paced(response)
        if self.total is not None and self.offset < self.total:
            raise TransportError(
                "connection_reset", f"unexpected end of body: {self.offset} of {self.total} bytes"
            )

    def _check_answer(self, response: StreamResponse) -> None:
        if not self.offset:
            if response.status != 200:
                raise DownloadError(
                    f"Unexpected status code while fetching artifact: {response.status}"
                )
            length = response.headers.get("content-length")
            self.total = int(length) if length and length.isdigit() else None
            if self.max_bytes is not None and (self.total or 0) > self.max_bytes:
                log.info(
                    "device %s: deployment %s: %s bytes exceed the link's %d-byte limit",
                    self.device_id,
                    self.deployment_id,
                    self.total,
                    self.max_bytes,
                )
                self._broken = "Operation timed out"
                raise TransportError("timeout", self._broken)
            return
        if response.status != 206:
            raise DownloadError(
                f"Unexpected status code while resuming the download: {response.status}"
            )
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if not match or int(match.group(1)) != self.offset:
            raise DownloadError(
                "HTTP server returned an different range than requested. "
                f"Requested {self.offset}, got "
                f"{response.headers.get('content-range', 'no Content-Range')}"
            )

    def _paced(self, response: StreamResponse) -> Iterator[bytes]:
        """Chunks at the device's rate: sleep until each byte is due, so the mean rate holds."""
        clock = self.clock
        start, start_offset = clock.now(), self.offset
        bytes_per_s = self.rate_kbps * 125.0 if self.rate_kbps else None
        break_at = None
        if self.break_at is not None:  # without a Content-Length, the link breaks at once
            break_at = max(1, int((self.total or 0) * self.break_at))
        for chunk in response.iter_chunks(CHUNK_BYTES):
            if break_at is not None and self.offset + len(chunk) >= break_at:
                self._broken = "Connection reset by peer"
                raise TransportError("connection_reset", self._broken)
            if self.corrupt_manifest:
                chunk = self._corrupted(chunk)
            self.offset += len(chunk)
            if bytes_per_s:
                due = start + (self.offset - start_offset) / bytes_per_s
                ahead = due - clock.now()
                if ahead > 0:
                    clock.sleep(ahead)
            if self.total:
                self._progress()
            yield chunk

    def _progress(self) -> None:
        quarter = min(4, self.offset * 4 // self.total)
        if quarter > self._quarter:
            self._quarter = quarter
            log.info(
                "device %s: deployment %s: downloaded %d%% (%d of %d bytes)",
                self.device_id,
                self.deployment_id,
                quarter * 25,
                self.offset,
                self.total,
            )

    def _corrupted(self, chunk: bytes) -> bytes:
        """Flip the first hex digit of the manifest (after the `version` tar member)."""
        if self._corrupt_at is None:
            if self.offset or len(chunk) < 512:
                self.corrupt_manifest = False
                return chunk
            version_size = int(chunk[124:136].strip(b"\0 ") or b"0", 8)
            self._corrupt_at = 512 + math.ceil(version_size / 512) * 512 + 512
        at = self._corrupt_at - self.offset
        if not 0 <= at < len(chunk):
            return chunk
        self.corrupt_manifest = False
        data = bytearray(chunk)
        index = _HEX.find(data[at])
        data[at] = _HEX[(index + 1) % 16] if index >= 0 else data[at] ^ 1
        return bytes(data)

    def _note(self, level: str, message: str) -> None:
        self.devlog.add(self.clock.wall(), level, message)
