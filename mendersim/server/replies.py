"""Building blocks of answers: Mender's error body, JSON bodies, request parsing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from mendersim.server import requestid
from mendersim.server.state import StateError


def request_id(request: web.Request) -> str:
    """The id the middleware gave this request (the client's own when it sent one)."""
    return request[requestid.KEY]


def error(status: int, message: str, request: web.Request, **headers: str) -> web.Response:
    """Mender's `Error` body: `{"error", "request_id"}`, with the id of the request."""
    body = json.dumps({"error": message, "request_id": request_id(request)})
    return web.Response(
        status=status, text=body, content_type="application/json", headers=headers or None
    )


def state_error(exc: StateError, request: web.Request) -> web.Response:
    if exc.body is not None:
        return json_response(exc.body, status=exc.status)
    return error(exc.status, str(exc), request)


def json_response(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(data),
        content_type="application/json",
        headers=headers or None,
    )


class BadRequest(Exception):
    """A body or parameter the handler cannot use; answered 400 with this message."""


async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("failed to decode request body: not JSON") from None


def require_str(data: Any, name: str, *, optional: bool = False) -> str | None:
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name}: must be a non-empty string")
    return value
