"""The master's spawn dispatch ends at the stop, and its scheduled sends leave first."""

from __future__ import annotations

import gevent

from mendersim.harness.coordination.spawn_dispatch import SpawnDispatch


def test_a_dispatch_still_running_is_ended_after_its_scheduled_sends():
    dispatch, sent = SpawnDispatch(), []

    def ramp() -> None:
        dispatch.note()  # Locust fires test_start from the greenlet that ramps
        for step in range(1000):
            gevent.spawn_later(0, sent.append, step)  # Locust schedules each send so
            gevent.sleep(1)

    ramping = gevent.spawn(ramp)
    gevent.sleep(0)
    assert dispatch.end() is True
    assert ramping.dead
    sent.append("stop")
    assert sent == [0, "stop"]


def test_a_finished_dispatch_or_the_callers_own_is_left_alone():
    dispatch = SpawnDispatch()
    assert dispatch.end() is False  # none noted
    done = gevent.spawn(dispatch.note)
    done.join()
    assert dispatch.end() is False

    def stops_itself() -> bool:
        dispatch.note()
        return dispatch.end()

    own = gevent.spawn(stops_itself)
    assert own.get() is False
