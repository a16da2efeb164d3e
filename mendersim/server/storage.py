"""Artifact files on disk, presigned download links and the download endpoint.

Links look like a storage bucket's presigned URLs: `/_mendersim/download/<artifact id>?expire=
<unix time>&sig=<HMAC-SHA256>`, fetched without the device JWT; an expired or altered link is
refused with 403. Downloads stream from disk with `Content-Length`, `Accept-Ranges` and single
byte ranges (206, 416), optionally capped in bytes per second per connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from pathlib import Path

from aiohttp import BodyPartReader, web

from mendersim.server import replies, requestid
from mendersim.server.routing import OPEN, Route
from mendersim.server.state import Artifact, ServerState, rfc3339

DOWNLOAD_PATH = "/_mendersim/download/{artifact_id}"
_CHUNK = 256 * 1024


class UploadTooLarge(Exception):
    """An uploaded artifact is larger than --max-upload."""


class ArtifactStore:
    def __init__(
        self,
        directory: Path,
        secret: bytes,
        *,
        base_url: str,
        lifetime: float,
        rate: int | None,
        state: ServerState,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._secret = secret
        self.base_url = base_url
        self.lifetime = lifetime
        self.rate = rate
        self.state = state

    def routes(self) -> list[Route]:
        return [Route("GET", DOWNLOAD_PATH, self.download, OPEN, "download")]

    # ---- files ---------------------------------------------------------------------------

    def path_of(self, artifact: Artifact) -> Path:
        return self.directory / artifact.filename

    async def receive(self, part: BodyPartReader, max_size: int) -> tuple[str, int]:
        """Stream an uploaded file part to disk; returns (file name, size).

        Raises UploadTooLarge (and keeps nothing) once the part grows past `max_size` bytes.
        """
        filename = f"{uuid.uuid4()}.mender"
        size = 0
        with open(self.directory / filename, "wb") as out:
            while chunk := await part.read_chunk(_CHUNK):
                size += len(chunk)
                if size > max_size:
                    break
                out.write(chunk)
        if size > max_size:
            self.discard(filename)
            raise UploadTooLarge(max_size)
        return filename, size

    def discard(self, filename: str) -> None:
        (self.directory / filename).unlink(missing_ok=True)

    # ---- presigned links -----------------------------------------------------------------

    def _signature(self, artifact_id: str, expire: str) -> str:
        message = f"{artifact_id}\n{expire}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def presign(self, artifact_id: str) -> tuple[str, str]:
        """(uri, expire as RFC 3339) for a download valid for the configured lifetime."""
        expire = int(time.time() + self.lifetime)
        sig = self._signature(artifact_id, str(expire))
        uri = f"{self.base_url}/_mendersim/download/{artifact_id}?expire={expire}&sig={sig}"
        return uri, rfc3339(expire)

    def _link_valid(self, artifact_id: str, expire: str | None, sig: str | None) -> bool:
        if not expire or not sig or not expire.isdigit() or int(expire) < time.time():
            return False
        return hmac.compare_digest(sig, self._signature(artifact_id, expire))

    # ---- download ------------------------------------------------------------------------

    async def download(self, request: web.Request) -> web.StreamResponse:
        artifact_id = request.match_info["artifact_id"]
        query = request.query
        if not self._link_valid(artifact_id, query.get("expire"), query.get("sig")):
            return replies.error(403, "link expired or signature invalid", request)
        artifact = self.state.artifacts.get(artifact_id)
        path = self.path_of(artifact) if artifact else None
        if path is None or not path.exists():
            return replies.error(404, "artifact not found", request)
        total = path.stat().st_size
        try:
            span = request.http_range
        except ValueError:
            span = None
        if span is None or (span.start is not None and span.start >= total):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
        start, stop = span.start, span.stop
        partial = start is not None or stop is not None
        if start is None:
            start = 0
        elif start < 0:
            start = max(0, total + start)
        stop = total if stop is None else min(stop, total)

        response = web.StreamResponse(status=206 if partial else 200)
        response.content_type = "application/octet-stream"
        response.content_length = stop - start
        response.headers["Accept-Ranges"] = "bytes"
        response.headers[requestid.HEADER] = replies.request_id(request)
        if partial:
            response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
        await response.prepare(request)
        await self._send(response, path, start, stop)
        await response.write_eof()
        return response

    async def _send(self, response: web.StreamResponse, path: Path, start: int, stop: int) -> None:
        """Copy [start, stop) of the file, pacing to the bandwidth cap when there is one."""
        chunk_size = _CHUNK if self.rate is None else max(1024, min(_CHUNK, self.rate // 10))
        began = time.monotonic()
        sent = 0
        with open(path, "rb") as source:
            source.seek(start)
            left = stop - start
            while left > 0:
                chunk = source.read(min(chunk_size, left))
                if not chunk:
                    break
                await response.write(chunk)
                sent += len(chunk)
                left -= len(chunk)
                if self.rate is not None:
                    ahead = sent / self.rate - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
