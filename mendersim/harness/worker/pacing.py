"""Device start-ups admitted at the rate this process can keep with scheduler lag under its bound.

A fleet that starts faster than one process can serve saturates its gevent hub: every timer
wakes late, the latencies measured are the generator's own, and Locust's heartbeat to the master
(an ordinary greenlet sleeping one second; gevent has no priorities) is late with them, until the
master drops the worker as missing after three silent seconds. So the hub must never saturate:
each device waits here before its first authentication, and a release loop lets waiting devices
through at a rate it adapts to how late its own timer wakes (a quarter more while the lag is well
under the bound and the rate holds devices back, half when the lag nears the bound). A process
that still lags beyond the bound with start-ups admitted at the floor rate cannot hold its
devices: it says so once, with the figure.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event

logger = logging.getLogger(__name__)

TICK_S = 0.05  # the release loop's period: also the probe of the hub's lag
WINDOW_S = 0.5  # the rate changes at most once per window, on the worst lag seen in it
START_RATE = 200.0  # start-ups per second before anything was measured
FLOOR_RATE = 5.0
CEILING_RATE = 50_000.0
HIGH, LOW = 0.5, 0.25  # shares of the lag bound: halve above HIGH, grow below LOW
GROWTH = 1.25


class Pacer:
    """The admission rate and how many devices each tick lets through; no clock of its own, so
    that it is deterministic under any sequence of (time, lateness) it is fed."""

    __slots__ = (
        "_credit",
        "_last",
        "_limited",
        "_window_lag",
        "_window_start",
        "admitted",
        "bound_s",
        "peak_lag_s",
        "peak_rate",
        "rate",
        "worst_lag_s",
    )

    def __init__(self, bound_s: float, rate: float = START_RATE) -> None:
        self.bound_s = bound_s
        self.rate = rate
        self.peak_rate = rate
        self.admitted = 0
        self.worst_lag_s = 0.0  # of the last window
        self.peak_lag_s = 0.0
        self._credit = 0.0
        self._last: float | None = None
        self._window_start = 0.0
        self._window_lag = 0.0
        self._limited = False  # whether the rate held devices back in this window

    def tick(self, now: float, lateness_s: float, waiting: int) -> int:
        """How many of the `waiting` devices to let through at `now`, given how late this tick
        woke. Unused credit never accumulates beyond one tick: no burst after a pause."""
        if self._last is None:
            self._last, self._window_start = now - TICK_S, now
        elapsed, self._last = max(now - self._last, 0.0), now
        self._window_lag = max(self._window_lag, lateness_s)
        if now - self._window_start >= WINDOW_S:
            self._adapt(self._window_lag, self._limited)
            self._window_start, self._window_lag, self._limited = now, 0.0, False
        self._credit = min(self._credit + self.rate * elapsed, max(self.rate * TICK_S, 1.0))
        released = min(int(self._credit), waiting)
        self._credit -= released
        self._limited = self._limited or released < waiting
        self.admitted += released
        return released

    def pause(self) -> None:
        """Nobody waits: the next tick starts a fresh window with no credit."""
        self._last, self._credit, self._window_lag, self._limited = None, 0.0, 0.0, False

    @property
    def saturated(self) -> bool:
        """At the floor rate and still lagging beyond the bound: more than it can hold."""
        return self.rate <= FLOOR_RATE and self.worst_lag_s > self.bound_s

    def _adapt(self, lag_s: float, limited: bool) -> None:
        """Grow only when the rate held devices back: never beyond what start-ups demand."""
        self.worst_lag_s = lag_s
        self.peak_lag_s = max(self.peak_lag_s, lag_s)
        if lag_s > self.bound_s * HIGH:
            self.rate = max(FLOOR_RATE, self.rate / 2)
        elif lag_s < self.bound_s * LOW and limited:
            self.rate = min(CEILING_RATE, self.rate * GROWTH)
            self.peak_rate = max(self.peak_rate, self.rate)


class Admission:
    """The gate devices pass before their first authentication, on this process's hub."""

    def __init__(self, bound_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.pacer = Pacer(bound_s)
        self._clock = clock
        self._waiting: deque[Event] = deque()
        self._loop: gevent.Greenlet | None = None
        self._said = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def summary(self) -> str:
        pacer = self.pacer
        return (
            f"start-ups paced: {pacer.admitted} admitted at up to {pacer.peak_rate:.0f}/s, "
            f"worst scheduler lag while admitting {pacer.peak_lag_s:.2f} s"
        )

    def wait(self) -> None:
        """Block this greenlet until the process has room for one more starting device."""
        admitted = Event()
        self._waiting.append(admitted)
        if self._loop is None:
            self._loop = gevent.spawn(self._release)
        admitted.wait()

    def _release(self) -> None:
        pacer, clock = self.pacer, self._clock
        try:
            while self._waiting:
                planned = clock() + TICK_S
                gevent.sleep(TICK_S)
                now = clock()
                for _ in range(pacer.tick(now, now - planned, len(self._waiting))):
                    self._waiting.popleft().set()
                if pacer.saturated and not self._said:
                    self._said = True
                    logger.warning(
                        "mendersim: this process cannot keep its devices on time: scheduler lag "
                        "%.2f s (bound %g s) with start-ups admitted at most %g/s; run fewer "
                        "devices per process (more worker processes)",
                        pacer.worst_lag_s,
                        pacer.bound_s,
                        pacer.rate,
                    )
        finally:
            pacer.pause()
            self._loop = None
