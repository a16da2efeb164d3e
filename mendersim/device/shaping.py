"""The device's link: a Transport wrapper adding latency, upload time, loss and outages.

Shaping happens on the device side by sleeping on the device's clock, so a gevent run models a
slow link without holding sockets longer than the real exchange. Download bandwidth is not
applied here: the download paces itself (download.py) because it knows the artifact's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from mendersim.device import decide, steps
from mendersim.device.network import NetworkProfile
from mendersim.device.transport import (
    IN_FLIGHT,
    Clock,
    Response,
    StreamResponse,
    Transport,
    TransportError,
    WebSocket,
)

MIN_RETRANSMIT_S = 1.0  # TCP's initial retransmission timeout (RFC 6298)
TIMEOUT_S = 30.0  # how long a device waits before giving up on a lost exchange
SEGMENT_BYTES = 1460


class ShapedTransport:
    """One per device; small (slots, no buffers). Decisions are deterministic per exchange."""

    __slots__ = ("_exchanges", "_inner", "_key", "_outage_scale", "clock", "profile", "seed")

    def __init__(
        self,
        inner: Transport,
        profile: NetworkProfile,
        clock: Clock,
        *,
        device_id: str,
        seed: int,
        outage_scale: float = 1.0,
    ) -> None:
        self._inner = inner
        self.profile = profile
        self.clock = clock
        self._key = device_id
        self.seed = seed
        self._outage_scale = outage_scale
        self._exchanges = 0

    def offline(self) -> bool:
        """Whether the link is in an outage now; each device's outages are phase-shifted."""
        outage = self.profile.outage
        if outage is None:
            return False
        every = outage.every_s * self._outage_scale
        phase = decide.fraction(self.seed, self._key, "outage") * every
        return (self.clock.now() + phase) % every < outage.duration_s * self._outage_scale

    def stalls(self) -> bool:
        """Whether the next exchange on a long-lived connection (MQTT) meets three losses in a
        row, which times the connection out, as three lost segments time a request out."""
        loss = self.profile.loss
        if not loss:
            return False
        self._exchanges += 1
        return decide.fraction(self.seed, self._key, "link-loss", str(self._exchanges)) < loss**3

    def _before(self, step: str, upload_bytes: int) -> None:
        """Set-up round trips, upload time and loss; raises as a real socket would."""
        if self.offline():
            raise TransportError("offline", f"{step}: network is unreachable")
        profile = self.profile
        self._exchanges += 1
        delay = profile.rtt_ms / 1000.0 * profile.setup_round_trips
        if profile.up_kbps and upload_bytes:
            delay += upload_bytes * 8 / (profile.up_kbps * 1000.0)
        if profile.loss:
            segments = profile.setup_round_trips + upload_bytes // SEGMENT_BYTES + 1
            u = decide.fraction(self.seed, self._key, "loss", str(self._exchanges))
            if u < profile.loss**3:  # three losses in a row: the client's request times out
                self.clock.sleep(delay + TIMEOUT_S)
                raise TransportError("timeout", f"{step}: no answer within {TIMEOUT_S:g} s")
            if u < 1 - (1 - profile.loss) ** segments:
                delay += max(MIN_RETRANSMIT_S, 2 * profile.rtt_ms / 1000.0)
        if delay:
            self.clock.sleep(delay)

    def request(
        self,
        step: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        # The link's set-up and the answer's download are part of the exchange (inner counts
        # its own part): a device stopped meanwhile still sends, or still reads, as a real one.
        with IN_FLIGHT:
            self._before(step, len(body) if body else 0)
        response = self._inner.request(step, method, url, headers=headers, body=body)
        if self.profile.down_kbps and response.body:
            with IN_FLIGHT:
                self.clock.sleep(len(response.body) * 8 / (self.profile.down_kbps * 1000.0))
        return response

    def stream(
        self, step: str, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AbstractContextManager[StreamResponse]:
        return self._stream(step, url, headers)

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
        """The upgrade pays the link's set-up; an outage ends the open connection."""
        self._before(steps.DEVICECONNECT, 0)
        return self._inner.websocket(
            url,
            headers=headers,
            on_closed=on_closed,
            ping_every=ping_every,
            deadline=deadline,
            link_down=self.offline if self.profile.outage else link_down,
        )

    @contextmanager
    def _stream(
        self, step: str, url: str, headers: Mapping[str, str] | None
    ) -> Iterator[StreamResponse]:
        self._before(step, 0)
        with self._inner.stream(step, url, headers=headers) as response:
            yield _OutageAwareStream(response, self)


class _OutageAwareStream:
    """A download that breaks off when the link goes down mid-body."""

    __slots__ = ("_link", "_response", "headers", "status")

    def __init__(self, response: StreamResponse, link: ShapedTransport) -> None:
        self._response = response
        self._link = link
        self.status = response.status
        self.headers = response.headers

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        for chunk in self._response.iter_chunks(size):
            if self._link.offline():
                raise TransportError("offline", "connection lost: network is unreachable")
            yield chunk
