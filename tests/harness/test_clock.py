import gevent
import pytest

from mendersim.harness.worker.clock import (
    GeventClock,
    LagHistogram,
    bucket_of,
    bucket_upper_s,
    merge,
    percentile_s,
)


def test_bucket_edges_bound_the_value_within_ten_percent():
    for lateness in (0.0005, 0.003, 0.05, 0.8, 1.0, 7.5):
        upper = bucket_upper_s(bucket_of(lateness))
        assert lateness <= upper <= lateness * 1.1 + 0.001


def test_p99_follows_the_slowest_percent():
    lag = LagHistogram()
    for _ in range(990):
        lag.record(0.001)
    for _ in range(10):
        lag.record(2.0)
    counts, worst = lag.take()
    assert worst == 2.0
    assert percentile_s(counts, 0.99) < 0.01
    assert percentile_s(counts, 0.999) == pytest.approx(2.0, rel=0.11)
    assert sum(lag.take()[0]) == 0  # take() starts afresh


def test_merge_and_empty():
    assert percentile_s([0] * 5, 0.99) == 0.0
    a, b = LagHistogram(), LagHistogram()
    a.record(0.5)
    b.record(0.5)
    assert sum(merge([a.take()[0], b.take()[0]])) == 2


def test_clock_measures_a_blocked_loop():
    lag = LagHistogram()
    clock = GeventClock(lag)
    sleeper = gevent.spawn(clock.sleep, 0.01)
    gevent.sleep(0)  # the sleeper is now waiting on its timer
    blocked_until = clock.now() + 0.2
    while clock.now() < blocked_until:  # the loop is busy: the timer cannot fire on time
        pass
    sleeper.join()
    counts, worst = lag.take()
    assert sum(counts) == 1
    assert worst >= 0.15
