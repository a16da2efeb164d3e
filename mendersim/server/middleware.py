"""One middleware for every request: request id, faults, credentials, per-route counters.

A single layer keeps the poll path short: one route lookup decides the route's kind (device,
open, management) and fault family, and the answer is counted under "<METHOD> <route template>".
Every answer carries Mender's `X-MEN-RequestID`, and every error, unknown routes included, is
Mender's JSON body, as mender-server's gin routers answer (`pkg/routing`, `pkg/requestid`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import web

from mendersim.server import replies, requestid
from mendersim.server.context import ServerContext
from mendersim.server.routing import DEVICE, MANAGEMENT

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_FAULT_MESSAGES = {500: "internal error", 503: "service unavailable", 429: "too many requests"}
# mender-server's texts for what no route handles (`pkg/routing`: handleNoRoute, handleNoMethod).
_UNROUTED_MESSAGES = {404: "not found", 405: "method not allowed"}


class RouteInfo(NamedTuple):
    key: str  # "<METHOD> <route template>"
    kind: str
    endpoint: str | None


def make_middleware(ctx: ServerContext, routes: dict[object, RouteInfo]) -> object:
    counters = ctx.requests
    faults = ctx.faults
    tokens = ctx.tokens
    state = ctx.state
    management_header = f"Bearer {ctx.config.mgmt_token}".encode()
    monotonic = time.monotonic
    new_request_id = requestid.RequestIds().new
    id_header = requestid.HEADER
    id_key = requestid.KEY

    def count(key: str, code: str) -> None:
        codes = counters.get(key)
        if codes is None:
            codes = counters[key] = {}
        codes[code] = codes.get(code, 0) + 1

    async def fault_answer(request: web.Request, endpoint: str) -> web.Response | None:
        """The injected answer, if a fault hits this request (raises _Dropped to drop it)."""
        decision = faults.decide(endpoint, monotonic())
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.drop:
            raise _Dropped
        if decision.status is None:
            return None
        headers = {}
        if decision.retry_after is not None:
            headers["Retry-After"] = str(decision.retry_after)
        return replies.error(decision.status, _FAULT_MESSAGES[decision.status], request, **headers)

    def refusal(request: web.Request, kind: str) -> web.Response | None:
        """401 unless the request carries the credentials its route needs."""
        if kind == DEVICE:
            device = state.accepted_device(tokens.device_id(request.headers.get("Authorization")))
            if device is None:
                return replies.error(401, "unauthorized", request)
            request["device"] = device
        elif kind == MANAGEMENT:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, management_header):
                return replies.error(401, "management token missing or wrong", request)
        return None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get(id_header) or new_request_id()
        request[id_key] = request_id
        info = routes.get(request.match_info.route)
        try:
            if info is None:
                info = RouteInfo(f"{request.method} <unmatched>", "", None)
                response = unrouted(request)
            else:
                response = None
                if info.endpoint is not None and faults.active:
                    response = await fault_answer(request, info.endpoint)
                if response is None:
                    response = refusal(request, info.kind)
                if response is None:
                    response = await handler(request)
        except _Dropped:
            count(info.key, "dropped")
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError from None
        except web.HTTPException as exc:  # a body over the size limit, ...
            response = replies.error(exc.status, exc.reason.lower(), request)
        except ConnectionError:  # the client went away mid-answer: nothing left to answer
            raise
        except Exception:
            log.exception("%s %s failed (request %s)", request.method, request.path, request_id)
            response = replies.error(500, "internal error", request)
        count(info.key, str(response.status))
        if not response.prepared:  # a streamed answer set its headers before sending them
            response.headers[id_header] = request_id
        return response

    return middleware


def unrouted(request: web.Request) -> web.Response:
    """Mender's JSON 404 or 405 where aiohttp would answer plain text."""
    exc = request.match_info.http_exception or web.HTTPNotFound()
    message = _UNROUTED_MESSAGES.get(exc.status, exc.reason.lower())
    allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
    return replies.error(exc.status, message, request, **allow)


class _Dropped(Exception):
    """Internal signal: close the connection without an answer."""
