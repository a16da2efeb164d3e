"""A device's telemetry: each stream read on its own interval, batched, encoded and published.

Readings are taken on a simulated timeline: `origin` plus real elapsed time divided by the run's
time scale, aligned to each stream's interval, so timestamps, values and the ground truth agree
whatever the scale.
"""

from __future__ import annotations

import time
from typing import Any

import gevent

from mendersim.telemetry import payload
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.session import Session


class Streaming:
    def __init__(
        self,
        session: Session,
        sensors: DeviceSensors,
        *,
        origin: float,
        time_scale: float,
        qos: int | None = None,
        clock: Any = None,
    ) -> None:
        self.session = session
        self.sensors = sensors
        self._origin = origin
        self._started = time.monotonic()
        self._scale = time_scale
        self._qos = qos
        self._clock = clock  # the harness's clock records scheduler lag; else gevent.sleep
        self._greenlet: gevent.Greenlet | None = None

    def now(self) -> float:
        """The simulated time."""
        return self._origin + (time.monotonic() - self._started) / self._scale

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        spec = self.sensors.spec
        now = self.now()
        due = {s.name: (now // s.interval_s + 1) * s.interval_s for s in spec.streams}
        batches: dict[str, list[payload.Reading]] = {s.name: [] for s in spec.streams}
        seqs = dict.fromkeys(batches, 0)
        while True:
            soonest = min(due.values())
            wait = (soonest - self.now()) * self._scale
            if wait > 0:
                (self._clock.sleep if self._clock else gevent.sleep)(wait)
            for stream in spec.streams:
                t = due[stream.name]
                if t > self.now():
                    continue
                due[stream.name] = t + stream.interval_s
                value = self.sensors.read(stream, t)
                if value is None:
                    continue
                batch = batches[stream.name]
                batch.append((t, value))
                if len(batch) >= spec.batch:
                    seqs[stream.name] += 1
                    message = payload.Message(
                        self.sensors.device_id,
                        stream.name,
                        stream.unit,
                        seqs[stream.name],
                        tuple(batch),
                    )
                    batch.clear()
                    qos = stream.qos if self._qos is None else self._qos
                    self.session.publish(
                        stream.name,
                        f"{self.session.root}/telemetry/{stream.name}",
                        payload.encode(message, spec.encoding),
                        qos,
                    )
