"""Deviceconnect's device side: the websocket each mender-connect keeps open.

As Mender's deviceconnect service (`api/http/device.go`, 1.5): the device's JWT is checked
before the upgrade (the middleware answers 401 with Mender's JSON error), a request that is not
a websocket upgrade is a 400, and the open connection is kept alive with websocket pings: one
every `ping` seconds (54 s) after the last ping or pong heard from the device, and the
connection is closed (1011, "connection timeout") when nothing is heard for 10/9 of that.
Messages from the device are read and dropped: no remote terminal or file transfer is served.
A device counts as connected while it holds at least one open connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from aiohttp import WSCloseCode, WSMsgType, web

from mendersim.server import replies, requestid
from mendersim.server.context import ServerContext
from mendersim.server.routing import DEVICE, Route

log = logging.getLogger(__name__)

CONNECT_PATH = "/api/devices/v1/deviceconnect/connect"
PONG_WAIT_PER_PING = 10 / 9  # deviceconnect: pongWait 1 min, ping period 9/10 of it


class _Keepalive:
    """The server's pings on one connection, on the event loop's timers (no task of its own)."""

    __slots__ = ("_handle", "_last", "_ping_due", "_task", "every", "wait", "ws")

    def __init__(self, ws: web.WebSocketResponse, every: float) -> None:
        self.ws = ws
        self.every = every
        self.wait = every * PONG_WAIT_PER_PING
        self._last = time.monotonic()
        self._ping_due = self._last + every
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Future | None = None  # the ping or close under way
        self._arm()

    def heard(self) -> None:
        """A ping or pong from the device: the deadline and the next ping move on."""
        self._last = time.monotonic()
        self._ping_due = self._last + self.every

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self) -> None:
        due = min(self._ping_due, self._last + self.wait)
        self._handle = asyncio.get_running_loop().call_later(
            max(due - time.monotonic(), 0.0), self._tick
        )

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.wait:
            self._handle = None
            self._task = asyncio.ensure_future(
                self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"connection timeout")
            )
            return
        if now >= self._ping_due:
            self._task = asyncio.ensure_future(self._ping())
            self._ping_due = now + self.every
        self._arm()

    async def _ping(self) -> None:
        try:
            await self.ws.ping()
        except (ConnectionError, RuntimeError) as exc:  # closing meanwhile
            log.debug("deviceconnect ping not sent: %s", exc)


class DeviceConnect:
    def __init__(self, ctx: ServerContext) -> None:
        self.ping = ctx.config.deviceconnect_ping
        self.connections: Counter[str] = Counter()  # device id → open connections
        self.sockets: set[web.WebSocketResponse] = set()

    def routes(self) -> list[Route]:
        return [Route("GET", CONNECT_PATH, self.connect, DEVICE)]

    def status(self) -> dict[str, int]:
        """What the status endpoint shows: devices connected and connections open."""
        return {"connected": len(self.connections), "connections": len(self.sockets)}

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        if not ws.can_prepare(request).ok:
            return replies.error(400, "the request is not a websocket upgrade", request)
        ws.headers[requestid.HEADER] = replies.request_id(request)
        await ws.prepare(request)
        device_id = request["device"].id
        self.connections[device_id] += 1
        self.sockets.add(ws)
        keepalive = _Keepalive(ws, self.ping)
        try:
            async for message in ws:
                if message.type == WSMsgType.PING:
                    keepalive.heard()
                    await ws.pong(message.data)
                elif message.type == WSMsgType.PONG:
                    keepalive.heard()
        finally:
            keepalive.cancel()
            self.sockets.discard(ws)
            self.connections[device_id] -= 1
            if self.connections[device_id] <= 0:
                del self.connections[device_id]
        return ws

    async def close_all(self, app: web.Application) -> None:
        """At shutdown: every device is told the server goes away (1001), as a gateway does."""
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
