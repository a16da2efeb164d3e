"""Timed actions of many objects in a process, run from one greenlet over a heap of due times.

A greenlet (or a timer) per object costs a timer, two stack switches and usually a loop
iteration per wake-up; for every streaming device's readings that was a third of a core at
10,000 messages a second. The schedule runs every action that is due in one pass instead,
yielding between batches so the devices' HTTP exchanges are not held up. With a lateness sink
(the harness clock), each action's lateness, how long after its due time it ran, goes to the
scheduler-lag histogram, as a sleep's does. Users: the telemetry readings (one schedule per
telemetry hub) and the kept connections' idle reaper.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Protocol

import gevent
from gevent.event import Event

log = logging.getLogger(__name__)

BATCH = 64  # actions between yields
Action = Callable[[], None]


class LatenessSink(Protocol):
    def record_late(self, seconds: float) -> None: ...


class Schedule:
    def __init__(self, lateness: LatenessSink | None = None) -> None:
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()  # ties run in the order they were scheduled
        self._lateness = lateness
        self._wake = Event()
        self._next_wake = float("inf")
        self._greenlet: gevent.Greenlet | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: float, action: Action) -> None:
        """Run `action` at monotonic time `when`, on the schedule's greenlet. It must not block
        for long: every other action waits behind it."""
        heapq.heappush(self._heap, (when, next(self._order), action))
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)
        elif when < self._next_wake:
            self._wake.set()

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self._heap.clear()

    def _run(self) -> None:
        heap = self._heap
        while True:
            self._wake.clear()
            if not heap:
                self._next_wake = float("inf")
                self._wake.wait()
                continue
            wait = heap[0][0] - time.monotonic()
            if wait > 0:
                self._next_wake = heap[0][0]
                self._wake.wait(wait)
                continue
            self._next_wake = float("-inf")  # running: nothing needs to wake it
            self._run_due()
            gevent.sleep(0)

    def _run_due(self) -> None:
        heap, lateness = self._heap, self._lateness
        for _ in range(BATCH):
            if not heap:
                return
            now = time.monotonic()
            when, _, action = heap[0]
            if when > now:
                return
            heapq.heappop(heap)
            if lateness is not None:
                lateness.record_late(now - when)
            try:
                action()
            except Exception:  # one object's failure must not stop every other's
                log.exception("a scheduled action failed")
