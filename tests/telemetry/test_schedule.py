"""The schedule of timed actions: due order, early wake-ups, lateness, isolation, fairness."""

from __future__ import annotations

import time

import gevent
import pytest

from mendersim.schedule import BATCH, Schedule


class Sink:
    def __init__(self) -> None:
        self.late: list[float] = []

    def record_late(self, seconds: float) -> None:
        self.late.append(seconds)


def test_actions_run_in_due_order_ties_in_the_order_given_and_lateness_is_recorded():
    sink, ran = Sink(), []
    schedule = Schedule(sink)
    now = time.monotonic()
    for name, delay in [("c", 0.3), ("a", 0.1), ("b1", 0.2), ("b2", 0.2)]:
        schedule.at(now + delay, lambda name=name: ran.append(name))
    gevent.sleep(0.6)
    schedule.stop()
    assert ran == ["a", "b1", "b2", "c"]
    assert len(sink.late) == 4 and all(0 <= late < 0.25 for late in sink.late)


def test_an_earlier_action_wakes_a_schedule_sleeping_for_a_later_one():
    schedule, ran = Schedule(), []
    schedule.at(time.monotonic() + 30, lambda: ran.append("late"))
    gevent.sleep(0.05)  # asleep until the late one
    started = time.monotonic()
    schedule.at(time.monotonic() + 0.05, lambda: ran.append(time.monotonic() - started))
    gevent.sleep(0.5)
    assert len(ran) == 1 and ran[0] < 0.3
    assert len(schedule) == 1  # the late one still waits
    schedule.stop()
    assert len(schedule) == 0


def test_a_failing_action_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture):
    schedule, ran = Schedule(), []
    now = time.monotonic()
    schedule.at(now, lambda: 1 / 0)
    schedule.at(now, lambda: ran.append("after"))
    gevent.sleep(0.2)
    schedule.stop()
    assert ran == ["after"]
    assert "a scheduled action failed" in caplog.text


def test_a_backlog_yields_between_batches_so_other_greenlets_run():
    """Devices' HTTP exchanges share the hub: a burst of due readings must not hold it."""
    schedule, ran, seen_by_other = Schedule(), [], []
    now = time.monotonic()
    for i in range(BATCH * 4):
        schedule.at(now, lambda i=i: ran.append(i))
    other = gevent.spawn(lambda: seen_by_other.append(len(ran)))
    gevent.sleep(0.2)
    schedule.stop()
    assert len(ran) == BATCH * 4
    assert seen_by_other and 0 < seen_by_other[0] < BATCH * 4
    assert other.dead
