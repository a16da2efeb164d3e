"""Start-up pacing: the admission rate follows the measured scheduler lag, bounded both ways."""

from __future__ import annotations

import logging
import sqlite3
import time

import gevent
import pytest
from harness_helpers import TIME_SCALE, locust

from mendersim.harness.worker.pacing import (
    CEILING_RATE,
    FLOOR_RATE,
    START_RATE,
    TICK_S,
    Admission,
    Pacer,
)

MANY = 10**9  # devices waiting: more than any rate lets through in a test


class FakeClock:
    now = 0.0


def run_ticks(pacer: Pacer, seconds: float, lateness, waiting=MANY, clock=None) -> int:
    """Ticks of a fake clock, each late by `lateness(released_before)`; devices let through."""
    clock = clock or FakeClock()
    released, total = 0, 0
    for _ in range(round(seconds / TICK_S)):
        late = lateness(released)
        clock.now += TICK_S + late
        released = pacer.tick(clock.now, late, waiting)
        total += released
    return total


def test_the_rate_grows_while_lag_is_low_and_devices_wait_but_never_beyond_the_ceiling():
    pacer, clock = Pacer(bound_s=1.0), FakeClock()
    run_ticks(pacer, 5, lambda _: 0.0, clock=clock)
    assert pacer.rate > START_RATE * 5
    run_ticks(pacer, 60, lambda _: 0.0, clock=clock)
    assert pacer.rate == CEILING_RATE


def test_the_rate_halves_with_each_window_whose_lag_nears_the_bound_down_to_the_floor():
    pacer, now, rates = Pacer(bound_s=1.0), 0.0, []
    for _ in range(12):
        now += TICK_S + 0.6  # each tick 0.6 s late: a window of its own
        pacer.tick(now, 0.6, MANY)
        rates.append(pacer.rate)
    assert rates == [max(FLOOR_RATE, START_RATE / 2**n) for n in range(12)]
    assert not pacer.saturated  # 0.6 s is still within the bound


def test_a_lag_beyond_the_bound_at_the_floor_rate_is_saturation():
    pacer = Pacer(bound_s=1.0)
    run_ticks(pacer, 20, lambda _: 1.5)
    assert pacer.rate == FLOOR_RATE and pacer.saturated
    assert pacer.worst_lag_s == 1.5


def test_between_the_thresholds_the_rate_holds_and_is_kept():
    pacer = Pacer(bound_s=1.0, rate=400)
    admitted = run_ticks(pacer, 10, lambda _: 0.3)  # lag between LOW and HIGH of the bound
    assert pacer.rate == 400
    # one tick's credit at most per tick, however late the tick: no catching up in bursts
    assert abs(admitted - 10 * 400) <= 1


def test_no_growth_without_devices_waiting():
    pacer = Pacer(bound_s=1.0)
    assert run_ticks(pacer, 10, lambda _: 0.0, waiting=0) == 0
    assert pacer.rate == START_RATE


def test_no_growth_beyond_what_start_ups_demand():
    """Two devices a tick (40/s) under a rate of 200/s: all admitted, the rate not inflated."""
    pacer = Pacer(bound_s=1.0)
    assert run_ticks(pacer, 10, lambda _: 0.0, waiting=2) == 2 * 10 / TICK_S
    assert pacer.rate == START_RATE


def test_no_burst_after_a_pause():
    pacer = Pacer(bound_s=1.0, rate=1000)
    pacer.tick(0.0, 0.0, MANY)
    assert pacer.tick(30.0, 0.0, MANY) <= pacer.rate * TICK_S


def test_the_rate_settles_where_the_process_keeps_its_lag_under_the_bound():
    """A process where each start-up costs 4 ms of the hub: capacity 250 per second. Admission
    must find a rate near it and keep the lag under the bound once it has."""
    cost_s, bound = 0.004, 1.0
    pacer, clock = Pacer(bound_s=bound), FakeClock()
    lags = [0.0]  # hub time owed by start-ups admitted and not yet served, tick by tick

    def lateness(released: int) -> float:
        # A tick wakes as late as the work queued before it; the hub serves that work for the
        # whole time since the last tick, the tick's own lateness included.
        lags.append(max(0.0, (lags[-1] + released * cost_s - TICK_S) / 2))
        return lags[-1]

    run_ticks(pacer, 30, lateness, clock=clock)  # finding the rate
    settled, started = len(lags), clock.now
    admitted = run_ticks(pacer, 60, lateness, clock=clock)
    assert max(lags[settled:]) <= bound
    busy = admitted * cost_s / (clock.now - started)  # the share of the hub start-ups take
    assert 0.5 <= busy <= 1.05


def test_every_waiting_device_is_admitted_in_turn():
    admission = Admission(bound_s=1.0)
    order: list[int] = []

    def device(number: int) -> None:
        admission.wait()
        order.append(number)

    group = [gevent.spawn(device, n) for n in range(300)]
    gevent.joinall(group, timeout=60)
    assert order == list(range(300))
    assert admission.waiting == 0
    assert admission.pacer.admitted == 300


def test_a_process_that_cannot_keep_up_says_so_once_with_the_figure(caplog):
    offset = [0.0]

    def slow_clock() -> float:  # each reading 2 s later: every tick is 2 s late
        offset[0] += 2.0
        return time.monotonic() + offset[0]

    admission = Admission(bound_s=1.0, clock=slow_clock)
    caplog.set_level(logging.WARNING, logger="mendersim.harness.worker.pacing")
    group = [gevent.spawn(admission.wait) for _ in range(40)]
    gevent.joinall(group, timeout=60)
    assert all(g.dead for g in group)
    said = [r.getMessage() for r in caplog.records if "cannot keep its devices" in r.getMessage()]
    assert len(said) == 1
    assert "scheduler lag 2.00 s (bound 1 s)" in said[0] and f"at most {FLOOR_RATE:g}/s" in said[0]


@pytest.mark.integration
@pytest.mark.parametrize("pacing", ["adaptive", "off"])
def test_a_fleet_started_all_at_once_is_admitted_and_every_device_accepted(
    small_fleet, tmp_path, pacing
):
    log = tmp_path / "run.log"
    run = locust(
        "--headless", "-u", "40", "-r", "40", "-t", "15s",
        "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
        "--mendersim-scenario", "ramp", "--mendersim-ramp-window", "0.1",
        "--mendersim-start-pacing", pacing,
        log=log,
    )  # fmt: skip
    assert run.wait(timeout=90) == 0, log.read_text()[-3000:]
    console = log.read_text()
    assert ("start-ups paced: 40 admitted at up to" in console) == (pacing == "adaptive")
    with sqlite3.connect(small_fleet) as conn:
        query = "SELECT status, COUNT(*) FROM acceptance WHERE server = 'embedded' GROUP BY 1"
        assert dict(conn.execute(query)) == {"accepted": 40}
