"""The small interface through which a device talks to the world.

The engine never imports Locust or opens sockets: the harness gives it a Transport that records
per-step statistics, tests give it a fake one, and a Clock that is gevent's in a run and virtual
in tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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


class StreamResponse(Protocol):
    """An open streaming download; closing it ends the exchange and records its statistics."""

    status: int
    headers: Mapping[str, str]  # lower-case names

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        """Yield the body; raises TransportError if the connection drops mid-body."""
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
