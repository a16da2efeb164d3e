"""A device's telemetry: each stream read on its own interval, batched, encoded and published.

Readings are taken on the simulated timeline (timeline.py), aligned to each stream's interval,
from the telemetry hub's schedule (mendersim/schedule.py), not a greenlet of the device's own.
"""

from __future__ import annotations

from mendersim.schedule import Schedule
from mendersim.telemetry import payload
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.session import Session
from mendersim.telemetry.timeline import Timeline


class Streaming:
    __slots__ = (
        "_batches",
        "_due",
        "_qos",
        "_schedule",
        "_seqs",
        "_stopped",
        "sensors",
        "session",
        "timeline",
    )

    def __init__(
        self,
        session: Session,
        sensors: DeviceSensors,
        schedule: Schedule,
        *,
        origin: float,
        time_scale: float,
        qos: int | None = None,
    ) -> None:
        self.session = session
        self.sensors = sensors
        self.timeline = Timeline(origin, time_scale)
        self._schedule = schedule
        self._qos = qos
        names = [s.name for s in sensors.spec.streams]
        self._due: dict[str, float] = {}
        self._batches: dict[str, list[payload.Reading]] = {name: [] for name in names}
        self._seqs = dict.fromkeys(names, 0)
        self._stopped = False

    def now(self) -> float:
        """The simulated time."""
        return self.timeline.now()

    def start(self) -> None:
        now = self.now()
        self._due = {
            s.name: (now // s.interval_s + 1) * s.interval_s for s in self.sensors.spec.streams
        }
        self._schedule_next()

    def stop(self) -> None:
        """Its next scheduled reading finds it stopped and does nothing."""
        self._stopped = True

    def _schedule_next(self) -> None:
        self._schedule.at(self.timeline.real(min(self._due.values())), self._take)

    def _take(self) -> None:
        if self._stopped:
            return
        spec = self.sensors.spec
        # The schedule runs this once the soonest reading is due; the simulated clock, computed
        # back from real time, may read a hair before it.
        now = max(self.now(), min(self._due.values()))
        for stream in spec.streams:
            t = self._due[stream.name]
            if t > now:
                continue
            self._due[stream.name] = t + stream.interval_s
            value = self.sensors.read(stream, t)
            if value is None:
                continue
            batch = self._batches[stream.name]
            batch.append((t, value))
            if len(batch) >= spec.batch:
                self._seqs[stream.name] += 1
                message = payload.Message(
                    self.sensors.device_id,
                    stream.name,
                    stream.unit,
                    self._seqs[stream.name],
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
        self._schedule_next()
