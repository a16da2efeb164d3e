"""A gateway's store-and-forward: what its rules select goes out at once while the broker link is
up and keeps up; otherwise it waits in a bounded buffer and is sent in order once the link is
back. A full buffer drops its oldest message, counted as `edge overflow`; after the flush that
follows, the gateway tells the platform what it lost on `<root>/edge/dropped`.

Statistics (type MQTT): `edge latency`, from the moment the gateway took the reading that
triggered a message (or closed its window) to the message's hand-over to the MQTT client, for
messages sent at once: the gateway's processing (how late the gateway woke is the harness's
scheduler lag, as for every device timer); `edge forward delay`, the same for messages that
waited in the buffer (an outage's length shows here, not in the latency); `edge overflow`, one
failure per message dropped.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass

import gevent

from mendersim.harness.reporting import stats
from mendersim.telemetry.session import MQTT, MqttError, Session

LATENCY = "edge latency"
FORWARD_DELAY = "edge forward delay"
OVERFLOW = "edge overflow"
DROPPED_STREAM = "edge dropped"  # step `mqtt publish edge dropped`
# unacknowledged QoS 1/2 messages before the gateway holds back (paho's queue is bounded)
IN_FLIGHT = 100
FLUSH_CHUNK = 50  # messages handed over between two yields, so the hub writes meanwhile
WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class Outgoing:
    stream: str  # the publish step is `mqtt publish <stream>`
    topic: str
    payload: bytes
    qos: int
    due: float  # monotonic time the gateway took its reading or closed its window
    t: float  # the simulated time it stands for


class StoreForward:
    def __init__(self, session: Session, capacity: int, device_id: str) -> None:
        self.session = session
        self.capacity = capacity
        self.device_id = device_id
        self.dropped_total = 0
        self._buffer: deque[Outgoing] = deque()
        self._lost: tuple[int, float, float] | None = None  # since the last report: n, first, last
        self._flusher: gevent.Greenlet | None = None
        # never more than paho queues: the run's --mendersim-mqtt-buffer bounds it
        self._in_flight = min(IN_FLIGHT, session.settings.buffer)

    @property
    def waiting(self) -> int:
        return len(self._buffer)

    def send(self, message: Outgoing) -> None:
        if not self._buffer and self._can_send():
            self._publish(message, LATENCY)
            return
        if len(self._buffer) >= self.capacity:
            self._drop(self._buffer.popleft())
        self._buffer.append(message)
        if self._flusher is None or self._flusher.dead:
            self._flusher = gevent.spawn(self._flush)

    def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.kill(block=False)

    def _can_send(self) -> bool:
        session = self.session
        return session.connected and session.unacknowledged < self._in_flight

    def _publish(self, message: Outgoing, step: str) -> None:
        session = self.session
        session.publish(message.stream, message.topic, message.payload, message.qos)
        waited = max(time.monotonic() - message.due, 0.0) * 1000.0
        stats.fire(session.environment, MQTT, step, waited, profile=session.profile)

    def _drop(self, message: Outgoing) -> None:
        self.dropped_total += 1
        n, first = (self._lost[0], self._lost[1]) if self._lost else (0, message.t)
        self._lost = (n + 1, first, message.t)
        session = self.session
        stats.fire(
            session.environment,
            MQTT,
            OVERFLOW,
            0,
            exception=MqttError("store-and-forward buffer full"),
            profile=session.profile,
        )

    def _flush(self) -> None:
        """Runs while messages wait: sends them in order as fast as the link allows, then what
        was lost meanwhile."""
        while self._buffer:
            if not self._can_send():
                gevent.sleep(WAIT_S)
                continue
            for _ in range(FLUSH_CHUNK):
                if not self._buffer or not self._can_send():
                    break
                self._publish(self._buffer.popleft(), FORWARD_DELAY)
            if not self._buffer and self._lost is not None:
                self._buffer.append(self._report(*self._lost))
                self._lost = None
            gevent.sleep(0)

    def _report(self, dropped: int, first: float, last: float) -> Outgoing:
        body = {
            "gateway": self.device_id,
            "dropped": dropped,  # since the last report; `first`/`last`: the times they stood for
            "dropped_total": self.dropped_total,
            "first": round(first, 3),
            "last": round(last, 3),
        }
        return Outgoing(
            DROPPED_STREAM,
            f"{self.session.root}/edge/dropped",
            json.dumps(body, separators=(",", ":")).encode(),
            1,
            time.monotonic(),
            last,
        )
