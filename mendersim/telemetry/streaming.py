"""A device's telemetry: each stream read on its own interval, batched, encoded and published.

Readings are taken on the simulated timeline (timeline.py), aligned to each stream's interval.
"""

from __future__ import annotations

from typing import Any

import gevent

from mendersim.telemetry import payload
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.session import Session
from mendersim.telemetry.timeline import Timeline


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
        self.timeline = Timeline(origin, time_scale, clock)
        self._qos = qos
        self._greenlet: gevent.Greenlet | None = None

    def now(self) -> float:
        """The simulated time."""
        return self.timeline.now()

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
            self.timeline.sleep_until(min(due.values()))
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
