"""The device engine's Transport on gevent: geventhttpclient exchanges that become Locust stats.

Connection policies (what the server sees of a device's connections):
- `fresh` (default): a new TCP connection for every exchange, closed after it, which is what
  Mender's C++ client (4.0 and later) does: it keeps no idle connection at all. The exchanges of
  every device go through one shared client per host whose connections are closed after each
  exchange (`Connection: close`), so a fresh exchange builds no client object.
- `keepalive`: one connection per device and host, reused while it has been idle for less than
  the idle timeout (in device seconds, so scaled with the time scale like every device timer),
  then closed by the process's idle reaper: a device polling more often than the timeout keeps
  its connection, one polling less often holds no socket between polls.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError

from mendersim.device import steps
from mendersim.device.transport import IN_FLIGHT, Response, TransportError, WebSocket
from mendersim.errors import ConfigError
from mendersim.harness.reporting import stats
from mendersim.schedule import Schedule

CONNECT_TIMEOUT_S = 10.0
NETWORK_TIMEOUT_S = 60.0
# Exchanges in flight at once through the shared `fresh` client of one host (each on its own
# connection); more than a process's ephemeral ports, so the bound never throttles a fleet.
FRESH_CONCURRENCY = 65_536

_Origin = tuple[str, str, int]  # scheme, host, port


def parse_origin(url: str) -> tuple[_Origin, str]:
    """Split an absolute URL into its origin and the request target (path and query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("host", f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (parts.scheme, parts.hostname, port), target


def transport_error(exc: BaseException) -> TransportError:
    """Name a connection-level failure by a short kind (what failure statistics group by)."""
    if isinstance(exc, gevent.Timeout | socket.timeout | TimeoutError):
        kind = "timeout"
    elif isinstance(exc, ConnectionRefusedError):
        kind = "connection_refused"
    elif isinstance(exc, ConnectionResetError | BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE)
    ):
        kind = "connection_reset"
    elif isinstance(exc, HTTPParseError):
        kind = "connection_closed"
    elif isinstance(exc, socket.gaierror):
        kind = "dns_error"
    else:
        kind = "connection_error"
    return TransportError(kind, f"{kind}: {exc}")


def _new_client(origin: _Origin, concurrency: int = 1) -> HTTPClient:
    scheme, host, port = origin
    return HTTPClient(
        host,
        port,
        ssl=scheme == "https",
        connection_timeout=CONNECT_TIMEOUT_S,
        network_timeout=NETWORK_TIMEOUT_S,
        concurrency=concurrency,
    )


_FRESH: dict[_Origin, HTTPClient] = {}


def _fresh_client(origin: _Origin) -> HTTPClient:
    """The process's client for `fresh` exchanges with one host: every exchange asks for
    `Connection: close`, so each gets a new connection and none goes back to the client's pool."""
    client = _FRESH.get(origin)
    if client is None:
        client = _FRESH[origin] = _new_client(origin, FRESH_CONCURRENCY)
    return client


class _Kept:
    """A device's kept connection to one host (keepalive policy) and when it turns too idle."""

    __slots__ = ("client", "idle_until")

    def __init__(self, client: HTTPClient) -> None:
        self.client: HTTPClient | None = client
        self.idle_until = 0.0  # 0: in use

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class IdleReaper:
    """Closes kept connections idle longer than their timeout: the process's one schedule of
    deadlines, instead of a timer per device."""

    def __init__(self) -> None:
        self._schedule = Schedule()

    def rest(self, kept: _Kept, timeout: float) -> None:
        """`kept` is idle from now; it is closed after `timeout` seconds unless used again."""
        kept.idle_until = until = time.monotonic() + timeout
        self._schedule.at(until, partial(_close_if_idle_since, kept, until))


def _close_if_idle_since(kept: _Kept, until: float) -> None:
    if kept.idle_until == until:  # not used since it went idle
        kept.close()


IDLE_REAPER = IdleReaper()


class GeventTransport:
    """A device's view of the network.

    `idle_timeout` 0 is the `fresh` policy, which holds nothing of a device: one transport
    serves every device of a profile. More than 0 keeps a connection per host for as long as it
    has been idle for less than that many seconds (`keepalive`): one transport per device."""

    __slots__ = ("_base", "_environment", "_idle_timeout", "_kept", "_profile")

    def __init__(
        self, environment: Any, base_url: str, *, profile: str, idle_timeout: float = 0.0
    ) -> None:
        self._environment = environment
        self._base, _ = parse_origin(base_url)
        self._profile = profile
        self._idle_timeout = idle_timeout
        self._kept: dict[_Origin, _Kept] | None = None

    @property
    def keeps_connections(self) -> bool:
        return bool(self._idle_timeout)

    def _target(self, url: str) -> tuple[_Origin, str]:
        if url.startswith(("http://", "https://")):
            return parse_origin(url)
        return self._base, url if url.startswith("/") else "/" + url

    @contextmanager
    def _client(self, origin: _Origin) -> Iterator[HTTPClient]:
        if not self._idle_timeout:
            yield _fresh_client(origin)
            return
        if self._kept is None:
            self._kept = {}
        kept = self._kept.get(origin)
        if kept is None or kept.client is None:
            kept = self._kept[origin] = _Kept(_new_client(origin))
        kept.idle_until = 0.0
        try:
            yield kept.client
        finally:
            if kept.client is not None:  # not closed by the device leaving meanwhile
                IDLE_REAPER.rest(kept, self._idle_timeout)

    def _headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if not self._idle_timeout:
            merged["Connection"] = "close"
        return merged

    def request(
        self,
        step: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        origin, target = self._target(url)
        started = time.perf_counter()
        try:
            with IN_FLIGHT, self._client(origin) as client:
                answer = client.request(method, target, body=body, headers=self._headers(headers))
                try:
                    data = answer.read()
                    response_headers = {k.lower(): v for k, v in answer.items()}
                    status = answer.status_code
                finally:
                    answer.release()
        except (OSError, HTTPParseError, gevent.Timeout) as exc:
            error = transport_error(exc)
            self._record(method, step, started, 0, error)
            raise error from None
        failure = stats.failure_for(step, method, status)
        self._record(
            method, step, started, len(data), stats.HttpFailure(failure) if failure else None
        )
        if status == 401 and step == steps.AUTH:
            stats.measure(
                self._environment, stats.DEVICE, stats.AUTH_NOT_ACCEPTED, 0, profile=self._profile
            )
        return Response(status, data, response_headers)

    @contextmanager
    def stream(
        self, step: str, url: str, *, headers: Mapping[str, str] | None = None
    ) -> Iterator[_Download]:
        origin, target = self._target(url)
        download = _Download(time.perf_counter())
        try:
            with self._client(origin) as client:
                try:
                    answer = client.get(target, headers=self._headers(headers))
                except (OSError, HTTPParseError, gevent.Timeout) as exc:
                    download.error = transport_error(exc)
                    raise download.error from None
                download.attach(answer)
                try:
                    yield download
                finally:
                    answer.release()
        finally:
            failure: BaseException | None = download.error
            if failure is None and download.status not in (200, 206):
                text = stats.failure_for(step, "GET", download.status)
                failure = stats.HttpFailure(text) if text else None
            self._record("GET", step, download.started, download.nbytes, failure)

    def websocket(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        on_closed: Callable[[str], None],
        ping_every: float,
        deadline: float,
        link_down: Callable[[], bool] | None = None,
    ) -> WebSocket | Response:
        """The deviceconnect link: its own socket, whatever the connection policy."""
        from mendersim.harness.worker.websocket import WS, open_websocket  # it uses transport_error

        origin, target = self._target(url)

        def fire(step: str, ms: float, nbytes: int, failure: BaseException | None) -> None:
            stats.fire(self._environment, WS, step, ms, nbytes, failure, profile=self._profile)

        return open_websocket(
            origin,
            target,
            headers,
            fire=fire,
            on_closed=on_closed,
            ping_every=ping_every,
            deadline=deadline,
            link_down=link_down,
            connect_timeout=CONNECT_TIMEOUT_S,
            network_timeout=NETWORK_TIMEOUT_S,
        )

    def close(self) -> None:
        """Drop kept connections (keepalive policy); the device is leaving the run."""
        for kept in (self._kept or {}).values():
            kept.close()
        self._kept = None

    def _record(
        self,
        method: str,
        step: str,
        started: float,
        nbytes: int,
        exception: BaseException | None,
    ) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        stats.fire(
            self._environment, method, step, elapsed_ms, nbytes, exception, profile=self._profile
        )


class _Download:
    """An open download: the engine reads chunks, the transport records one entry at the end."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.status = 0
        self.headers: dict[str, str] = {}
        self.nbytes = 0
        self.error: TransportError | None = None
        self._answer: Any = None

    def attach(self, answer: Any) -> None:
        self._answer = answer
        self.status = answer.status_code
        self.headers = {k.lower(): v for k, v in answer.items()}

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._answer.read(size)
            except (OSError, HTTPParseError, gevent.Timeout) as exc:
                self.error = transport_error(exc)
                raise self.error from None
            if not chunk:
                return
            self.nbytes += len(chunk)
            yield chunk
