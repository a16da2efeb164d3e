"""A gateway's rules over one child sensor's readings, free of I/O so they are tested alone.

Each stream follows one of two rules, and either may raise alerts:
- aggregated (the default): min, max, mean, count and last per window;
- deadband (`deadband: B`): report by exception, as OPC UA's absolute deadband filter does: a
  reading is reported when it differs from the last reported value by more than B (the first
  reading always is);
- alerts (`alert_above`, `alert_below`): a reading strictly past a limit raises an alert, the first
  reading back within the limits clears it; both are sent at once. A stream past the upper limit
  that falls straight past the lower one clears the first and raises the second.

Readings come in time order; missing readings (None) are not fed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mendersim.telemetry.spec import StreamSpec

RAISED, CLEARED = "raised", "cleared"
ABOVE, BELOW = "above", "below"


class Window:
    """One stream's running aggregates within the current window."""

    __slots__ = ("count", "high", "last", "low", "total")

    def __init__(self) -> None:
        self.count = 0
        self.low = math.inf
        self.high = -math.inf
        self.total = 0.0
        self.last = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.last = value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value

    def summary(self, aggregates: tuple[str, ...]) -> dict[str, float | int | None]:
        """The chosen aggregates; min, max, mean and last are None for a window without
        readings (the sensor's data was missing)."""
        empty = self.count == 0
        values = {
            "min": None if empty else self.low,
            "max": None if empty else self.high,
            "mean": None if empty else self.total / self.count,
            "count": self.count,
            "last": None if empty else self.last,
        }
        return {name: values[name] for name in aggregates}


@dataclass(frozen=True, slots=True)
class Alert:
    stream: str
    state: str  # RAISED | CLEARED
    limit: str  # ABOVE | BELOW
    threshold: float
    t: float
    value: float


def _alarm(stream: StreamSpec, value: float) -> tuple[str, float] | None:
    """The limit a reading is past, with its threshold, or None."""
    if stream.alert_above is not None and value > stream.alert_above:
        return ABOVE, stream.alert_above
    if stream.alert_below is not None and value < stream.alert_below:
        return BELOW, stream.alert_below
    return None


class SensorRules:
    """The rule state of one child sensor across its streams."""

    __slots__ = ("_alarms", "_reported", "windows")

    def __init__(self, streams: tuple[StreamSpec, ...]) -> None:
        self.windows = {s.name: Window() for s in streams if s.deadband is None}
        self._reported: dict[str, float] = {}  # deadband streams: the last value reported
        self._alarms: dict[str, tuple[str, float]] = {}  # streams in alarm: limit, threshold

    def feed(self, stream: StreamSpec, t: float, value: float) -> tuple[bool, list[Alert]]:
        """Whether the reading is reported by exception, and the alerts it raises or clears."""
        report = False
        if stream.deadband is None:
            self.windows[stream.name].add(value)
        else:
            last = self._reported.get(stream.name)
            if last is None or abs(value - last) > stream.deadband:
                self._reported[stream.name] = value
                report = True
        alerts: list[Alert] = []
        if stream.alert_above is not None or stream.alert_below is not None:
            before, now = self._alarms.get(stream.name), _alarm(stream, value)
            if before != now:
                if before is not None:
                    del self._alarms[stream.name]
                    alerts.append(Alert(stream.name, CLEARED, *before, t, value))
                if now is not None:
                    self._alarms[stream.name] = now
                    alerts.append(Alert(stream.name, RAISED, *now, t, value))
        return report, alerts

    def close(self, aggregates: tuple[str, ...]) -> dict[str, dict[str, float | int | None]]:
        """The window's aggregates per aggregated stream; the next window starts empty."""
        out = {name: window.summary(aggregates) for name, window in self.windows.items()}
        self.windows = {name: Window() for name in self.windows}
        return out
