"""The engine's Clock on gevent, measuring how late timers fire (scheduler lag).

A saturated load generator wakes its devices late, which looks like a slow server from outside.
Every sleep records actual wake minus planned wake in a small log-bucket histogram, cheap enough
to run on every device timer, merged across workers by the master.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import gevent

# Bucket i holds lateness in [GROWTH**i - 1, GROWTH**(i+1) - 1) milliseconds: 10 % resolution,
# from sub-millisecond up to BUCKETS steps (about 25 hours), the last bucket open-ended.
GROWTH = 1.1
BUCKETS = 200
_LOG_GROWTH = math.log(GROWTH)


def bucket_of(lateness_s: float) -> int:
    if lateness_s <= 0:
        return 0
    return min(int(math.log1p(lateness_s * 1000.0) / _LOG_GROWTH), BUCKETS - 1)


def bucket_upper_s(index: int) -> float:
    """The upper edge of a bucket in seconds: what percentiles report (never optimistic)."""
    return (GROWTH ** (index + 1) - 1) / 1000.0


class LagHistogram:
    """Counts of lateness per bucket; `take()` hands over the counts and starts afresh."""

    __slots__ = ("counts", "max_s")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.max_s = 0.0

    def record(self, lateness_s: float) -> None:
        self.counts[bucket_of(lateness_s)] += 1
        if lateness_s > self.max_s:
            self.max_s = lateness_s

    def take(self) -> tuple[list[int], float]:
        counts, worst = self.counts, self.max_s
        self.counts, self.max_s = [0] * BUCKETS, 0.0
        return counts, worst


def percentile_s(counts: Sequence[int], fraction: float) -> float:
    """The bucket edge under which `fraction` of the samples fall (0 with no samples)."""
    total = sum(counts)
    if total == 0:
        return 0.0
    needed = math.ceil(total * fraction)
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= needed:
            return bucket_upper_s(index)
    return bucket_upper_s(len(counts) - 1)


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    merged = [0] * BUCKETS
    for counts in histograms:
        for index, count in enumerate(counts):
            merged[index] += count
    return merged


class GeventClock:
    """Real time; sleeps yield to gevent and record their lateness into a shared histogram."""

    __slots__ = ("_lag",)

    def __init__(self, lag: LagHistogram) -> None:
        self._lag = lag

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        planned = time.monotonic() + max(seconds, 0.0)
        gevent.sleep(seconds)
        self._lag.record(time.monotonic() - planned)

    def record_late(self, seconds: float) -> None:
        """Lateness of a wake-up timed elsewhere (the telemetry schedule's actions)."""
        self._lag.record(seconds)

    def later(self, seconds: float, action: Callable[[], None]) -> Callable[[], None]:
        """A greenlet of its own, existing only until the action has run."""
        return partial(gevent.spawn_later(max(seconds, 0.0), action).kill, block=False)
