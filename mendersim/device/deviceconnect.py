"""mender-connect's link to the deviceconnect service: one websocket per device, kept open.

As mender-connect 3.0 does (`connectionmanager/`, `connection/connection.go`): the device
upgrades `GET /api/devices/v1/deviceconnect/connect` with its JWT as `Authorization: Bearer`,
pings every 54 s (nine tenths of its 60 s read deadline, which the server's pings and pongs
renew) and answers the server's pings. After a drop or a failed attempt it connects again with
mender-connect's backoff: the first attempt after a success goes at once, attempt n waits
2^(n // 3) s, at most 1800 s, plus 0 to 5 s of jitter. A new token (re-authentication) closes
the link and opens one with that token; a restart (reboot) closes it for the downtime, and the
device connects again once it holds a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mendersim.device import decide
from mendersim.device.transport import Response, TransportError, WebSocket

if TYPE_CHECKING:
    from mendersim.device.engine import Device

log = logging.getLogger(__name__)

CONNECT_PATH = "/api/devices/v1/deviceconnect/connect"
PING_EVERY_S = 54.0  # mender-connect: pingPeriod = DefaultPingWait (1 min) * 9 / 10
DEADLINE_PER_PING = 10 / 9  # the read deadline, per ping interval
MAX_BACKOFF_S = 1800.0
JITTER_S = 5.0


def reconnect_delay(attempt: int, jitter: float) -> float:
    """Seconds before connection attempt `attempt` (1-based, counted since the last success);
    `jitter` in [0, 1). mender-connect's expBackoff: none for the first, then 1 s shifted left
    by attempt // 3, capped at MAX_BACKOFF_S, plus up to JITTER_S."""
    if attempt <= 1:
        return 0.0
    return min(2.0 ** min(attempt // 3, 11), MAX_BACKOFF_S) + JITTER_S * jitter


class DeviceConnect:
    """One device's link; small (slots), and holds no greenlet while connected or idle."""

    __slots__ = ("_attempts", "_cancel", "_device", "_down", "_socket", "_token", "_tries")

    def __init__(self, device: Device) -> None:
        self._device = device
        self._token: str | None = None
        self._socket: WebSocket | None = None
        self._cancel: Callable[[], None] | None = None  # a pending connection attempt
        self._attempts = 0  # since the last successful connection
        self._tries = 0  # every attempt, for the jitter's decision
        self._down = False

    @property
    def connected(self) -> bool:
        return self._socket is not None

    def token_changed(self, token: str) -> None:
        """The device holds a new token: reconnect with it."""
        if token == self._token and (self._socket is not None or self._cancel is not None):
            return
        self._token = token
        self._close_socket()
        self._schedule()

    def down(self) -> None:
        """The device went off (reboot): the link closes and stays closed until `up()`."""
        self._down = True
        self._token = None
        self._cancel_pending()
        self._close_socket()

    def up(self) -> None:
        self._down = False
        self._schedule()

    def stop(self) -> None:
        """The device leaves the run."""
        self.down()

    # Internals.
    def _schedule(self) -> None:
        if self._cancel is not None or self._down or self._token is None:
            return
        self._attempts += 1
        self._tries += 1
        device = self._device
        config = device.config
        jitter = decide.fraction(
            config.seed, device.record.device_id, "deviceconnect", str(self._tries)
        )
        delay = reconnect_delay(self._attempts, jitter) * config.time_scale
        self._cancel = device.clock.later(delay, self._connect)

    def _connect(self) -> None:
        self._cancel = None
        token = self._token
        if self._down or token is None:
            return
        device = self._device
        ping_every = device.config.deviceconnect_ping
        try:
            answer = device.transport.websocket(
                CONNECT_PATH,
                headers={"Authorization": f"Bearer {token}"},
                on_closed=self._closed,
                ping_every=ping_every,
                deadline=ping_every * DEADLINE_PER_PING,
            )
        except TransportError as exc:
            log.debug("device %s: deviceconnect failed: %s", device.record.device_id, exc.kind)
            self._schedule()
            return
        if isinstance(answer, Response):
            log.debug(
                "device %s: deviceconnect refused: %d", device.record.device_id, answer.status
            )
            self._schedule()
            return
        if self._down or token != self._token:  # went off, or a new token, while connecting
            answer.close()
            return
        self._close_socket()
        self._socket = answer
        self._attempts = 0

    def _closed(self, kind: str) -> None:
        log.debug("device %s: deviceconnect lost: %s", self._device.record.device_id, kind)
        self._socket = None
        self._schedule()

    def _close_socket(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            socket.close()

    def _cancel_pending(self) -> None:
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()
