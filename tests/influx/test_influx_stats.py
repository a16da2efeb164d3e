"""Interval aggregation agrees with Locust's own statistics, and the listener's writer never
blocks or breaks the run when the server is slow, dead or the buffer is full."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from locust.env import Environment
from locust.stats import RequestStats
from tsdb import free_port

from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting.influx import InfluxListener, InfluxSettings, fleet_points
from mendersim.harness.reporting.influx_stats import IntervalAggregator, error_kind


def test_interval_figures_match_locust_for_the_same_requests():
    rng = random.Random(7)
    times = [rng.uniform(1, 3000) for _ in range(2000)]
    aggregator = IntervalAggregator(0.0)
    stats = RequestStats()
    for response_time in times:
        aggregator.record("GET", "deployments/next", response_time, 10, None, {}, None)
        stats.log_request("GET", "deployments/next", response_time, 10)
    interval = aggregator.drain(10.0)
    fields = interval.steps[("deployments/next", "GET", None)].fields(interval.seconds)
    entry = stats.get("deployments/next", "GET")
    assert fields["count"] == 2000 and fields["bytes"] == 20_000 and fields["failures"] == 0
    assert fields["rt_mean"] == pytest.approx(entry.avg_response_time)
    assert fields["rt_min"] == entry.min_response_time
    assert fields["rt_max"] == entry.max_response_time
    for name, percent in (("rt_p50", 0.5), ("rt_p95", 0.95), ("rt_p99", 0.99)):
        # Locust's rounded bucket, kept within the exact extremes (as Locust does for the median)
        bucket = entry.get_response_time_percentile(percent)
        assert fields[name] == min(max(bucket, entry.min_response_time), entry.max_response_time)
    assert fields["interval_s"] == 10.0


def test_steps_are_kept_apart_by_type_and_profile_and_drain_starts_afresh():
    aggregator = IntervalAggregator(0.0)
    aggregator.record("POST", "auth", 5, 0, None, {"profile": "medical"}, None)
    aggregator.record("POST", "auth", 7, 0, None, {"profile": "automotive", "other": 1}, None)
    aggregator.record("DEVICE", "auth", None, None, None, None, None)
    first = aggregator.drain(1.0)
    assert set(first.steps) == {
        ("auth", "POST", "medical"),
        ("auth", "POST", "automotive"),
        ("auth", "DEVICE", None),
    }
    untimed = first.steps[("auth", "DEVICE", None)].fields(1.0)
    assert untimed["count"] == 1 and "rt_mean" not in untimed
    second = aggregator.drain(3.0)
    assert second.steps == {} and second.seconds == 2.0


def test_errors_are_counted_by_kind_never_by_text():
    aggregator = IntervalAggregator(0.0)
    answer = SimpleNamespace(status_code=409)
    aggregator.record("PUT", "status:failure", 3, 0, RuntimeError("device 17 said no"), {}, answer)
    aggregator.record(
        "PUT", "status:failure", 3, 0, ConnectionResetError("peer 10.0.0.9"), {}, None
    )
    aggregator.record("PUT", "status:failure", 3, 0, "a text", {}, SimpleNamespace(status_code=200))
    stats = aggregator.drain(1.0).steps[("status:failure", "PUT", None)]
    assert stats.failures == 3
    assert stats.errors == {"http_409": 1, "ConnectionResetError": 1, "error": 1}


class HttpFailure(Exception):
    pass


def test_error_kind_prefers_the_http_status():
    assert error_kind(ValueError(), SimpleNamespace(status_code=503)) == "http_503"
    assert error_kind(ValueError(), SimpleNamespace(status_code=0)) == "ValueError"
    assert error_kind(ValueError(), None) == "ValueError"
    coded = HttpFailure("conflict")
    coded.status_code = 409
    assert error_kind(coded, None) == "http_409"
    assert error_kind(HttpFailure("HTTP 429"), None) == "http_429"  # the harness's own wording
    assert error_kind(HttpFailure("HTTP 429 from device 7"), None) == "HttpFailure"
    assert error_kind("HTTP 500", None) == "http_500"


def test_download_throughput_is_per_interval():
    before = FleetSnapshot(download_bytes=1_000, download_seconds=1.0)
    after = FleetSnapshot(download_bytes=9_000, download_seconds=3.0, outcomes={"success": 2})
    [fleet, *rest] = fleet_points(after, before, "r", 1_000)
    assert fleet._fields["download_throughput_bps"] == 4_000.0
    assert [p._name for p in rest] == ["mendersim_outcomes"]
    [first, *_] = fleet_points(after, None, "r", 1_000)
    assert "download_throughput_bps" not in first._fields


def _listener(url: str, interval: float = 1.0, buffer: int = 1000) -> InfluxListener:
    options = SimpleNamespace(
        influx_url=url,
        influx_token="",
        influx_org="",
        influx_bucket="b",
        influx_interval=interval,
        influx_run_id="unit",
        influx_buffer=buffer,
    )
    environment = Environment(parsed_options=options)
    environment.create_local_runner()
    listener = InfluxListener(environment)
    listener.on_test_start(environment=environment)
    return listener


def test_the_token_comes_from_a_file_unless_given(tmp_path):
    token_file = tmp_path / "influx-token"
    token_file.write_text("from-file\n", encoding="utf-8")
    given = {"influx_url": "http://127.0.0.1:1", "influx_org": "", "influx_bucket": "b"}
    given |= {"influx_interval": 1.0, "influx_run_id": "", "influx_buffer": 10}
    from_file = SimpleNamespace(**given, influx_token="", influx_token_file=str(token_file))
    assert InfluxSettings.from_options(from_file).token == "from-file"
    direct = SimpleNamespace(**given, influx_token="given", influx_token_file=str(token_file))
    assert InfluxSettings.from_options(direct).token == "given"


def _fire(listener: InfluxListener, steps: int) -> None:
    for n in range(steps):
        listener.environment.events.request.fire(
            request_type="GET",
            name=f"step {n}",
            response_time=1.0,
            response_length=0,
            response=None,
            context={},
            exception=None,
        )


def test_slow_server_write_yields_to_other_greenlets():
    """influxdb-client's synchronous write must yield under gevent: devices keep running."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("slow_write_check.py"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0.9 < figures["elapsed"] < 10  # the write gave up after its timeout
    # The device greenlet kept ticking during the write: a blocking write leaves it at 0 or 1.
    # (Not tied to the ideal 100 ticks a second, which a loaded machine does not give.)
    assert figures["ticks"] >= 10, figures
    assert figures["dropped"] > 0


def test_full_buffer_drops_oldest_points_and_counts_them():
    listener = _listener(f"http://127.0.0.1:{free_port()}", buffer=5)
    try:
        listener._writer.kill()  # no writer: points stay in the buffer
        _fire(listener, 8)
        listener.collect()  # 8 step points + run + generator = 10 points into a buffer of 5
        assert listener.dropped_points == 5
    finally:
        listener.on_quit()
    # The final flush could not write the 5 buffered points, nor its own run and generator points.
    assert listener.dropped_points == 12


def test_listener_without_url_does_nothing():
    environment = Environment(parsed_options=SimpleNamespace(influx_url=""))
    environment.create_local_runner()
    listener = InfluxListener(environment)
    listener.on_test_start(environment=environment)
    listener.on_test_stop()
    listener.on_quit()
    assert listener.settings is None and len(environment.events.request._handlers) == 1
