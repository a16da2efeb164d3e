"""A gateway device: N child sensors read on the simulated timeline, processed on the device by
the edge rules (edge_rules.py), and only what the rules select sent, through the
store-and-forward buffer (forward.py).

Child sensor `i` (from 1) of gateway G is `G-s001`, ...: its readings are those of the sensor
models under that id, so they are pure functions of the fleet seed, like any device's, and its
anomalies go to the ground truth under that id. A gateway polls its sensors at its own offset
within each stream's interval (whole seconds, drawn from the seed), as gateways started at
different times do; its windows stay aligned to the epoch. Under the gateway's topic root:

- `sensors/<sensor>/aggregates`, at the end of every window (epoch-aligned, `window_s`):
  `{"gateway", "sensor", "seq", "start", "end", "streams": {name: {"min", "max", "mean",
  "count"}}}` over the readings with start <= ts < end (the first window starts at the first
  reading the gateway took);
- `sensors/<sensor>/alerts`, at once: `{"gateway", "sensor", "seq", "stream", "state":
  raised|cleared, "limit": above|below, "threshold", "ts", "value"}`;
- `sensors/<sensor>/telemetry/<stream>`, deadband reports, at once: the telemetry message of
  payload.py with one reading;
- `edge/dropped` after an overflow (forward.py).

`edge reduction ratio` (type DEVICE, a value not a time): per gateway and window, the readings its
sensors produced over the messages its rules selected (a window that selected none carries its
readings into the next).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent

from mendersim.device import decide
from mendersim.harness.reporting import stats
from mendersim.telemetry import payload
from mendersim.telemetry.anomalies import Anomaly
from mendersim.telemetry.edge_rules import Alert, SensorRules
from mendersim.telemetry.forward import Outgoing, StoreForward
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.session import Session
from mendersim.telemetry.spec import StreamSpec, TelemetrySpec
from mendersim.telemetry.timeline import Timeline

REDUCTION = "edge reduction ratio"
AGGREGATES_STREAM, ALERT_STREAM, DEADBAND_STREAM = "edge aggregates", "edge alert", "edge deadband"


def child_id(gateway_id: str, index: int) -> str:
    return f"{gateway_id}-s{index + 1:03d}"


def _compact(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _rounded(value: float | int | None) -> float | int | None:
    return round(value, 4) if isinstance(value, float) else value


class Child:
    """One child sensor: its models, its rule state and its message counters."""

    __slots__ = ("aggregates_seq", "alerts_seq", "deadband_seq", "rules", "sensors", "topic")

    def __init__(self, sensors: DeviceSensors, root: str) -> None:
        self.sensors = sensors
        self.rules = SensorRules(sensors.spec.streams)
        self.topic = f"{root}/sensors/{sensors.device_id}"
        self.aggregates_seq = 0
        self.alerts_seq = 0
        self.deadband_seq: dict[str, int] = {}


class Gateway:
    """One gateway device's edge processing; the hub starts and stops it like a device's
    streams."""

    def __init__(
        self,
        session: Session,
        spec: TelemetrySpec,
        device_id: str,
        attributes: Mapping[str, Any],
        seed: int,
        *,
        origin: float,
        time_scale: float,
        on_anomaly: Callable[[str, Anomaly], None] | None = None,
        qos: int | None = None,
        clock: Any = None,
    ) -> None:
        if spec.gateway is None:
            raise ValueError(f"profile {spec.profile} has no gateway section")
        self.session = session
        self.spec = spec
        self.config = spec.gateway
        self.qos = spec.gateway.qos if qos is None else qos  # a run's --mendersim-mqtt-qos wins
        self.device_id = device_id
        self.timeline = Timeline(origin, time_scale, clock)
        self.forward = StoreForward(session, self.config.buffer, device_id)
        self.children = [
            Child(
                DeviceSensors(spec, child_id(device_id, i), attributes, seed, on_anomaly),
                session.root,
            )
            for i in range(self.config.children)
        ]
        self.readings = 0  # produced by the sensors, all windows
        self.selected = 0  # messages the rules selected, all windows
        self._window_readings = 0  # since the last reduction sample
        self._window_selected = 0
        self._covered_from = 0.0
        self._phase = decide.fraction(seed, device_id, "edge-phase")
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.forward.stop()

    def offset(self, stream: StreamSpec) -> float:
        """Where in each interval of the stream this gateway reads: whole seconds, so reading
        times stay exact."""
        return float(math.floor(self._phase * stream.interval_s))

    # -- the timeline --------------------------------------------------------------------------

    def _run(self) -> None:
        """Events in time order: a window closes before the readings taken at its end."""
        streams = self.spec.streams
        window = self.config.window_s
        now = self.timeline.now()
        due = {}
        for s in streams:
            offset = self.offset(s)
            due[s.name] = ((now - offset) // s.interval_s + 1) * s.interval_s + offset
        window_end = (now // window + 1) * window
        self._covered_from = min(due.values())
        while True:
            soonest = min(window_end, *due.values())
            if soonest > self.timeline.now():
                self.timeline.sleep_until(soonest)
                continue
            woke = time.monotonic()  # how late the wake-up was is the scheduler lag
            if window_end == soonest:
                self._close(window_end - window, window_end, woke)
                window_end += window
            for stream in streams:
                if due[stream.name] == soonest:
                    due[stream.name] = soonest + stream.interval_s
                    self._take(stream, soonest, woke)
            gevent.sleep(0)  # a gateway that fell behind catches up without starving the rest

    def _take(self, stream: StreamSpec, t: float, due: float) -> None:
        for child in self.children:
            value = child.sensors.read(stream, t)
            if value is None:
                continue
            self.readings += 1
            self._window_readings += 1
            report, alerts = child.rules.feed(stream, t, value)
            if report:
                self._deadband(child, stream, t, value, due)
            for alert in alerts:
                self._alert(child, alert, due)

    def _close(self, start: float, end: float, due: float) -> None:
        start = max(start, self._covered_from)
        aggregates = self.config.aggregates
        for child in self.children:
            streams = child.rules.close(aggregates)
            if not streams or start >= end:
                continue
            child.aggregates_seq += 1
            body = {
                "gateway": self.device_id,
                "sensor": child.sensors.device_id,
                "seq": child.aggregates_seq,
                "start": round(start, 3),
                "end": round(end, 3),
                "streams": {
                    name: {k: _rounded(v) for k, v in values.items()}
                    for name, values in streams.items()
                },
            }
            self._select(AGGREGATES_STREAM, f"{child.topic}/aggregates", _compact(body), due, end)
        if self._window_selected:
            ratio = self._window_readings / self._window_selected
            stats.measure(
                self.session.environment,
                stats.DEVICE,
                REDUCTION,
                ratio,
                profile=self.session.profile,
            )
            self._window_readings = self._window_selected = 0

    # -- messages ------------------------------------------------------------------------------

    def _deadband(
        self, child: Child, stream: StreamSpec, t: float, value: float, due: float
    ) -> None:
        seq = child.deadband_seq.get(stream.name, 0) + 1
        child.deadband_seq[stream.name] = seq
        message = payload.Message(
            child.sensors.device_id, stream.name, stream.unit, seq, ((t, value),)
        )
        self._select(
            DEADBAND_STREAM,
            f"{child.topic}/telemetry/{stream.name}",
            payload.encode(message, self.spec.encoding),
            due,
            t,
        )

    def _alert(self, child: Child, alert: Alert, due: float) -> None:
        child.alerts_seq += 1
        body = {
            "gateway": self.device_id,
            "sensor": child.sensors.device_id,
            "seq": child.alerts_seq,
            "stream": alert.stream,
            "state": alert.state,
            "limit": alert.limit,
            "threshold": alert.threshold,
            "ts": round(alert.t, 3),
            "value": round(alert.value, 4),
        }
        self._select(ALERT_STREAM, f"{child.topic}/alerts", _compact(body), due, alert.t)

    def _select(self, stream: str, topic: str, body: bytes, due: float, t: float) -> None:
        self.selected += 1
        self._window_selected += 1
        self.forward.send(Outgoing(stream, topic, body, self.qos, due, t))
