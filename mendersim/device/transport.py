"""The small interface through which a device talks to the world.

The engine never imports Locust or opens sockets: the harness gives it a Transport that records
per-step statistics, tests give it a fake one, and a Clock that is gevent's in a run and virtual
in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol


class TransportError(Exception):
    """The exchange did not complete: no HTTP status exists.

    `kind` is a short, low-cardinality name such as "connection_reset", "connection_refused",
    "timeout" or "offline"; it is what statistics count, never the message.
    """

    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(message or kind)
        self.kind = kind


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


class InFlight:
    """Exchanges of this process under way, from the moment a device begins one (a shaped
    link's set-up and download time included) until it has the answer: the end of a run waits
    for them, so that a final status the server took is also in the device's history."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *_: object) -> None:
        self.count -= 1


IN_FLIGHT = InFlight()


class StreamResponse(Protocol):
    """An open streaming download; closing it ends the exchange and records its statistics."""

    status: int
    headers: Mapping[str, str]  # lower-case names

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        """Yield the body; raises TransportError if the connection drops mid-body."""
        ...


class WebSocket(Protocol):
    """An open websocket. The transport keeps it alive: it pings every `ping_every` seconds,
    answers the server's pings and drops the link after `deadline` seconds without a ping or
    pong from the server; it records the statistics (see device.steps)."""

    def close(self) -> None:
        """End the connection (the socket is closed; `on_closed` is not called)."""
        ...


class Transport(Protocol):
    def request(
        self,
        step: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """One exchange. `url` is a path on the server or an absolute URL; `step` names the
        statistics entry (see device.steps). Raises TransportError when no answer came."""
        ...

    def stream(
        self, step: str, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AbstractContextManager[StreamResponse]:
        """A GET whose body is read in chunks (artifact downloads)."""
        ...

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
        """A GET upgraded to a websocket: the open socket, or the server's answer when it
        refused the upgrade (401, ...). Raises TransportError when no answer came.

        `on_closed(kind)` is called once when the connection ends other than by `close()`
        (kind as TransportError's, e.g. "closed_by_server", "timeout"); `link_down()` says the
        device's network is in an outage, which ends the connection too."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Unix time, for timestamps a device writes into logs."""
        ...

    def sleep(self, seconds: float) -> None:
        """Yield for `seconds` (real or virtual)."""
        ...

    def later(self, seconds: float, action: Callable[[], None]) -> Callable[[], None]:
        """Run `action` on its own after `seconds` (it may block, as a device's call does);
        returns what cancels it. What a device does beside its main loop (the deviceconnect
        link) runs this way."""
        ...
