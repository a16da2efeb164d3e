"""Request-body limits: what one client may make the server hold, and for how long.

A body larger than its route allows is answered 413 before it is read (when Content-Length
says so) or as soon as it grows past the limit; a body sent too slowly is answered 408; JSON
nested deeper than any Mender document is answered 400 with Mender's error body instead of
reaching the parser's recursion limit. Uploads are streamed to disk and bounded by
`--max-upload`; every other route reads its body into memory and is bounded in kilobytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from mendersim.server import replies

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KIB = 1024
AUTH_LIMIT = 16 * KIB  # id_data and an RSA-4096 public key fit many times over
INVENTORY_LIMIT = 64 * KIB
DEFAULT_LIMIT = 1024 * KIB  # status, deployment logs, management JSON
MAX_JSON_DEPTH = 32  # Mender's documents nest a few levels

_UPLOAD_PATHS = ("/api/management/v1/deployments/artifacts",)


def body_limit(path: str, max_upload: int) -> int:
    """Bytes a request to `path` may send."""
    if path in _UPLOAD_PATHS:
        return max_upload
    if path.startswith("/api/devices/v1/authentication"):
        return AUTH_LIMIT
    if path.startswith("/api/devices/v1/inventory"):
        return INVENTORY_LIMIT
    return DEFAULT_LIMIT


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in `body` (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _too_deep(body: bytes) -> bool:
    # The exact scan only runs when the body holds more brackets than the limit at all.
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    return json_depth(body) > MAX_JSON_DEPTH


def make_limits_middleware(max_upload: int, body_timeout: float) -> object:
    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        limit = body_limit(request.path, max_upload)
        length = request.content_length
        if length is not None and length > limit:
            return _too_large(request, limit)
        if not request.can_read_body:
            return await handler(request)
        bounded = request.clone(client_max_size=limit)
        if request.path in _UPLOAD_PATHS:
            return await handler(bounded)  # streamed by its handler, which checks the size
        try:
            # kept: the handler's read() gets the same bytes
            body = await asyncio.wait_for(bounded.read(), body_timeout)
        except web.HTTPRequestEntityTooLarge:
            return _too_large(request, limit)
        except asyncio.TimeoutError:  # TimeoutError from 3.11 on
            return replies.error(
                408,
                f"request body not received within {body_timeout:g} s",
                request,
                Connection="close",
            )
        if _too_deep(body):
            return replies.error(
                400,
                f"failed to decode request body: JSON nested deeper than {MAX_JSON_DEPTH}",
                request,
            )
        return await handler(bounded)

    return limits


def _too_large(request: web.Request, limit: int) -> web.Response:
    return replies.error(
        413, f"request body larger than {limit} bytes", request, Connection="close"
    )
