"""Sensor readings as pure functions of (seed, device, stream, simulated time).

A gauge reads: base (plus its location's offset) + a daily cosine peaking at `peak_hour` UTC +
calibration drift (a sawtooth: `drift_per_day`, recalibrated every DRIFT_PERIOD_DAYS with a
per-device phase) + Gaussian noise, clamped to the sensor's range, then bent by the anomaly in
force. An event stream reads 1 with probability `base` (raised by anomalies), else 0. Nothing is
kept between readings but the current anomaly of each stream, so a run replays exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from mendersim.device import decide
from mendersim.telemetry import anomalies
from mendersim.telemetry.anomalies import Anomaly
from mendersim.telemetry.spec import StreamSpec, TelemetrySpec

DRIFT_PERIOD_DAYS = 30.0
_DAY = 86400.0
_TAU = 2 * math.pi


def gauss(seed: int, device_id: str, stream: str, t: float) -> float:
    """A standard normal draw fixed by its arguments (Box-Muller over two fixed fractions)."""
    u1, u2 = decide.fraction_pair(seed, device_id, "noise", f"{stream}\x1f{t:.3f}")
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(_TAU * u2)


class DeviceSensors:
    """One device's streams; `read` gives a stream's value at t, or None (missing data).

    `on_anomaly` is called once per anomaly, with the first reading it affects: the ground truth
    of what a subscriber will receive.
    """

    __slots__ = (
        "_current",
        "_drift_phase",
        "_offsets",
        "device_id",
        "on_anomaly",
        "rate",
        "seed",
        "spec",
    )

    def __init__(
        self,
        spec: TelemetrySpec,
        device_id: str,
        attributes: Mapping[str, Any],
        seed: int,
        on_anomaly: Callable[[str, Anomaly], None] | None = None,
    ) -> None:
        self.spec = spec
        self.device_id = device_id
        self.seed = seed
        self.rate = spec.anomaly_rate(attributes)
        self.on_anomaly = on_anomaly
        location = spec.location(seed, device_id)
        offsets = dict(location.offsets) if location else {}
        amplitude = dict(location.amplitude) if location else {}
        self._offsets = {
            s.name: (offsets.get(s.name, 0.0), amplitude.get(s.name, 0.0)) for s in spec.streams
        }
        self._drift_phase = decide.fraction(seed, device_id, "drift-phase") * DRIFT_PERIOD_DAYS
        # stream -> [slot, its anomaly or None, whether reported]
        self._current: dict[str, list[Any]] = {}

    @property
    def location(self) -> str | None:
        location = self.spec.location(self.seed, self.device_id)
        return location.name if location else None

    def anomaly_at(self, stream: StreamSpec, t: float) -> Anomaly | None:
        """The anomaly in force in a stream at t; reports each one once, on first sight."""
        spec = self.spec
        slot = anomalies.slot_of(t, spec.slot_s)
        current = self._current.get(stream.name)
        if current is None or current[0] != slot:
            anomaly = anomalies.in_slot(
                spec.types, self.rate, spec.slot_s, self.seed, self.device_id, stream.name, slot
            )
            current = [slot, anomaly, False]
            self._current[stream.name] = current
        anomaly = current[1]
        if anomaly is None or not anomaly.covers(t):
            return None
        if not current[2]:
            current[2] = True
            if self.on_anomaly is not None:
                self.on_anomaly(self.device_id, anomaly)
        return anomaly

    def read(self, stream: StreamSpec, t: float) -> float | None:
        anomaly = self.anomaly_at(stream, t)
        if anomaly is not None and anomaly.type == "missing":
            return None
        offset, extra_amplitude = self._offsets[stream.name]
        amplitude = stream.amplitude + extra_amplitude
        daily = amplitude * math.cos(_TAU * ((t % _DAY) / 3600.0 - stream.peak_hour) / 24.0)
        noise = stream.noise
        if anomaly is not None:
            if anomaly.type == "pattern_change":
                daily = -daily * max(anomaly.magnitude, 1.0)
            elif anomaly.type == "noise_burst":
                noise *= anomaly.magnitude
        if stream.kind == "event":
            p = stream.base + daily
            if anomaly is not None and anomaly.type in ("spike", "drift", "noise_burst"):
                p = 1.0 if anomaly.type == "spike" else p + 0.5 * anomaly.progress(t)
            u = decide.fraction(self.seed, self.device_id, "event", f"{stream.name}\x1f{t:.3f}")
            return 1.0 if u < p else 0.0
        days = (t / _DAY + self._drift_phase) % DRIFT_PERIOD_DAYS
        draw = gauss(self.seed, self.device_id, stream.name, t)
        value = stream.base + offset + daily + stream.drift_per_day * days + noise * draw
        if anomaly is not None:
            if anomaly.type == "spike":
                value += anomaly.magnitude * stream.sigma
            elif anomaly.type == "drift":
                value += anomaly.magnitude * stream.sigma * anomaly.progress(t)
        if stream.low is not None and value < stream.low:
            value = stream.low
        if stream.high is not None and value > stream.high:
            value = stream.high
        return value
