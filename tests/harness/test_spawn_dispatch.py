"""The master's spawn dispatch ends at the stop, and its scheduled sends leave first."""

from __future__ import annotations

import gevent

from mendersim.harness.coordination.spawn_dispatch import SpawnDispatch


class Runner:
    """Dispatches as Locust's master does: each step schedules its sends, then sleeps."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.stop_from_start = False
        self.dispatch = SpawnDispatch()

    def start(self, user_count: int, spawn_rate: float) -> bool | None:
        if self.stop_from_start:  # a shape ending its own run
            return self.dispatch.end()
        for step in range(user_count):
            gevent.spawn_later(0, self.sent.append, step)
            gevent.sleep(1 / spawn_rate)
        return None


def test_a_dispatch_still_running_is_ended_after_its_scheduled_sends():
    runner = Runner()
    runner.dispatch.watch(runner)
    first = gevent.spawn(runner.start, 1000, 1)
    gevent.sleep(0)
    first.kill()  # a changed user count: the web UI ends the swarm's greenlet, starts another
    again = gevent.spawn(runner.start, 1000, 1)
    gevent.sleep(0)
    assert runner.dispatch.end() is True
    assert again.dead
    runner.sent.append("stop")
    assert runner.sent == [0, 0, "stop"]


def test_a_finished_dispatch_or_the_callers_own_is_left_alone():
    runner = Runner()
    assert runner.dispatch.end() is False  # nothing started
    runner.dispatch.watch(runner)
    gevent.spawn(runner.start, 2, 1000).join()
    assert runner.dispatch.end() is False
    runner.stop_from_start = True
    assert gevent.spawn(runner.start, 1, 1).get() is False
