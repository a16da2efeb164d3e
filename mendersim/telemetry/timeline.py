"""The simulated timeline telemetry is read on: `origin` plus real elapsed time divided by the
run's time scale, so timestamps, values and the ground truth agree whatever the scale."""

from __future__ import annotations

import time
from typing import Any

import gevent


class Timeline:
    __slots__ = ("_clock", "_origin", "_scale", "_started")

    def __init__(self, origin: float, time_scale: float, clock: Any = None) -> None:
        self._origin = origin
        self._started = time.monotonic()
        self._scale = time_scale
        self._clock = clock  # the harness's clock records scheduler lag; else gevent.sleep

    def now(self) -> float:
        """The simulated time."""
        return self._origin + (time.monotonic() - self._started) / self._scale

    def real(self, t: float) -> float:
        """The monotonic time at which the simulated time is t."""
        return self._started + (t - self._origin) * self._scale

    def sleep_until(self, t: float) -> None:
        """Behind schedule it still yields: a device catching up, one reading at a time, must
        not keep the hub and every other device waiting."""
        wait = (t - self.now()) * self._scale
        (self._clock.sleep if self._clock else gevent.sleep)(max(wait, 0.0))
