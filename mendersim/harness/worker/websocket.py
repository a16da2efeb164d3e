"""The deviceconnect websocket on gevent: wsproto's state machine over one non-blocking socket.

The upgrade runs on the calling greenlet. Once open, a connection holds no greenlet: an io
watcher hands arriving frames to wsproto (pings are answered with pongs at once) and one timer
sends the device's pings and enforces its read deadline, as mender-connect's gorilla
connection does. What an idle connected device costs is the socket, two watchers and wsproto's
frame parser, which is what lets 10,000 connected devices share one process.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent
import gevent.socket
import gevent.ssl
from wsproto import ConnectionType, H11Handshake
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.utilities import ProtocolError

from mendersim.device import steps
from mendersim.device.transport import Response, TransportError
from mendersim.harness.worker.transport import transport_error

log = logging.getLogger(__name__)

WS = "WS"  # request_type of the websocket's statistics
RECEIVE_BYTES = 65536

Fire = Callable[[str, float, int, BaseException | None], None]  # step, ms, bytes, failure
_Origin = tuple[str, str, int]


class WebSocketDropped(Exception):
    """What Locust's failure table shows for a lost link: its reason, never a device."""


def open_websocket(
    origin: _Origin,
    target: str,
    headers: Mapping[str, str],
    *,
    fire: Fire,
    on_closed: Callable[[str], None],
    ping_every: float,
    deadline: float,
    link_down: Callable[[], bool] | None,
    connect_timeout: float,
    network_timeout: float,
) -> GeventWebSocket | Response:
    """Connect and upgrade; the open socket, or the server's refusal as a Response."""
    scheme, host, port = origin
    started = time.perf_counter()
    sock: Any = None
    try:
        sock = gevent.socket.create_connection((host, port), timeout=connect_timeout)
        if scheme == "https":
            sock = _tls().wrap_socket(sock, server_hostname=host)
        sock.settimeout(network_timeout)
        handshake, request = upgrade_request(origin, target, headers)
        sock.sendall(request)
        answer = _handshake_answer(sock, handshake)
    except (OSError, gevent.Timeout, ProtocolError) as exc:
        if sock is not None:
            sock.close()
        error = transport_error(exc) if not isinstance(exc, ProtocolError) else None
        error = error or TransportError("protocol_error", f"protocol_error: {exc}")
        fire(steps.DEVICECONNECT, _ms(started), 0, error)
        raise error from None
    if isinstance(answer, Response):
        sock.close()
        failure = f"HTTP {answer.status}"
        fire(steps.DEVICECONNECT, _ms(started), len(answer.body), WebSocketDropped(failure))
        return answer
    fire(steps.DEVICECONNECT, _ms(started), 0, None)
    return GeventWebSocket(sock, answer, fire, on_closed, ping_every, deadline, link_down)


def upgrade_request(
    origin: _Origin, target: str, headers: Mapping[str, str]
) -> tuple[H11Handshake, bytes]:
    """The upgrade a device sends, as mender-connect's dialer does: no subprotocol asked."""
    scheme, host, port = origin
    handshake = H11Handshake(ConnectionType.CLIENT)
    default_port = 443 if scheme == "https" else 80
    request = Request(
        host=host if port == default_port else f"{host}:{port}",
        target=target,
        extra_headers=list(headers.items()),
    )
    return handshake, handshake.send(request)


def _handshake_answer(sock: Any, handshake: H11Handshake) -> Connection | Response:
    """Read until the server accepted (wsproto's frame connection) or refused (its answer)."""
    refused: Response | None = None
    body = bytearray()
    while True:
        data = sock.recv(RECEIVE_BYTES)
        handshake.receive_data(data or None)
        for event in handshake.events():
            if isinstance(event, AcceptConnection):
                connection = handshake.connection
                assert connection is not None
                return connection
            if isinstance(event, RejectConnection):
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                refused = Response(event.status_code, b"", headers)
                if not event.has_body:
                    return refused
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished and refused is not None:
                    refused.body = bytes(body)
                    return refused
        if not data:
            raise ConnectionResetError("connection closed during the websocket upgrade")


_TLS: list[ssl.SSLContext] = []


def _tls() -> ssl.SSLContext:
    if not _TLS:
        _TLS.append(gevent.ssl.create_default_context())
    return _TLS[0]


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


class GeventWebSocket:
    """One open link; answers pings from the loop's callbacks, never blocks."""

    __slots__ = (
        "_closed",
        "_deadline",
        "_every",
        "_fire",
        "_last_heard",
        "_link_down",
        "_next_ping",
        "_on_closed",
        "_ping_sent",
        "_reader",
        "_sock",
        "_timer",
        "_ws",
    )

    def __init__(
        self,
        sock: Any,
        connection: Connection,
        fire: Fire,
        on_closed: Callable[[str], None],
        ping_every: float,
        deadline: float,
        link_down: Callable[[], bool] | None,
    ) -> None:
        self._sock = sock
        self._ws = connection
        self._fire = fire
        self._on_closed = on_closed
        self._every = ping_every
        self._deadline = deadline
        self._link_down = link_down
        self._closed = False
        now = time.monotonic()
        self._last_heard = now
        self._next_ping = now + ping_every
        self._ping_sent: float | None = None  # perf_counter() of the unanswered ping
        sock.settimeout(0.0)  # from here on the loop's callbacks read and write, never wait
        loop = gevent.get_hub().loop
        self._reader = loop.io(sock.fileno(), 1)
        self._reader.start(self._readable)
        self._timer: Any = None
        self._arm()
        self._process()  # frames that came with the upgrade's answer

    def close(self) -> None:
        """Close the socket without a close frame, as mender-connect's Close() does."""
        self._shutdown()

    # -- the loop's callbacks ------------------------------------------------------------------

    def _readable(self) -> None:
        sock = self._sock
        try:
            while True:
                data = sock.recv(RECEIVE_BYTES)
                if not data:
                    self._lost("connection_closed", "connection closed by the server")
                    return
                self._ws.receive_data(data)
                pending = getattr(sock, "pending", None)
                if pending is None or not pending():
                    break
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        except OSError as exc:
            error = transport_error(exc)
            self._lost(error.kind, str(error))
            return
        self._process()

    def _tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = time.monotonic()
        if self._link_down is not None and self._link_down():
            self._lost("offline", "network is unreachable")
            return
        if now - self._last_heard >= self._deadline:
            if self._ping_sent is not None:
                error = WebSocketDropped(f"no pong within {self._deadline:g} s")
                self._fire(steps.DEVICECONNECT_PING, _ms(self._ping_sent), 0, error)
                self._ping_sent = None
            self._lost("timeout", f"nothing heard for {self._deadline:g} s")
            return
        if now >= self._next_ping:
            # mender-connect's ping carries its read deadline in seconds
            if not self._send(Ping(payload=str(int(self._deadline)).encode())):
                return
            if self._ping_sent is None:
                self._ping_sent = time.perf_counter()
            self._next_ping = now + self._every
        self._arm()

    # -- internals -----------------------------------------------------------------------------

    def _arm(self) -> None:
        due = min(self._next_ping, self._last_heard + self._deadline)
        self._timer = gevent.get_hub().loop.timer(max(due - time.monotonic(), 0.0))
        self._timer.start(self._tick)

    def _process(self) -> None:
        for event in self._ws.events():
            if isinstance(event, Ping):
                self._last_heard = time.monotonic()
                if not self._send(event.response()):
                    return
            elif isinstance(event, Pong):
                self._last_heard = time.monotonic()
                if self._ping_sent is not None:
                    self._fire(steps.DEVICECONNECT_PING, _ms(self._ping_sent), 0, None)
                    self._ping_sent = None
            elif isinstance(event, CloseConnection):
                if self._ws.state.name == "REMOTE_CLOSING":
                    self._send(event.response())
                self._lost("closed_by_server", f"closed by the server ({event.code})")
                return
            # Messages (remote terminal, file transfer sessions) are not simulated.
            if self._closed:
                return

    def _send(self, event: Any) -> bool:
        """Write one small frame; False (and the link lost) when the socket cannot take it."""
        data = self._ws.send(event)
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        except OSError as exc:
            if not self._closed:
                error = transport_error(exc)
                self._lost(error.kind, str(error))
            return False
        if sent < len(data):
            if not self._closed:
                self._lost("timeout", "the server does not read")
            return False
        return True

    def _lost(self, kind: str, reason: str) -> None:
        if self._closed:
            return
        self._shutdown()
        self._fire(steps.DEVICECONNECT_DROP, 0.0, 0, WebSocketDropped(reason))
        self._on_closed(kind)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reader.close()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        try:
            self._sock.close()
        except OSError as exc:
            log.debug("closing a deviceconnect socket: %s", exc)
