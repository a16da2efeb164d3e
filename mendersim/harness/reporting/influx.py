"""Per-step statistics and fleet state to InfluxDB, from every Locust process.

Each process (standalone, worker, master) aggregates its request events per step and interval and
writes a few points per step, not one per request; the master (or a standalone run) adds
run-level points: users, workers and the fleet snapshot. Every process writes its own generator
health (CPU, RSS, dropped points). Writes go through influxdb-client's synchronous write API from
a greenlet; under gevent's monkey patching its HTTP call yields, so a slow server delays only the
writer, never a device. Points wait in a bounded buffer; an unreachable server costs a
rate-limited warning and a dropped-point count, never an exception into the test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import gevent
import psutil
from gevent.event import Event
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from mendersim.errors import ERROR_PREFIX, ConfigError
from mendersim.harness.config import secrets
from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting import measures
from mendersim.harness.reporting.influx_stats import Interval, IntervalAggregator
from mendersim.harness.reporting.runinfo import RunInfo

logger = logging.getLogger(__name__)

STEP = "mendersim_step"
ERRORS = "mendersim_errors"
RUN = "mendersim_run"
FLEET = "mendersim_fleet"
FLEET_DEVICES = "mendersim_fleet_devices"
DEPLOYMENTS = "mendersim_deployments"
OUTCOMES = "mendersim_outcomes"
GENERATOR = "mendersim_generator"

BATCH_SIZE = 5000
WARNING_EVERY_S = 60.0
MAX_WRITE_TIMEOUT_S = 10.0


def _http_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{value!r} is not an http:// or https:// URL")
    return value


def _positive(kind: type[int] | type[float]):
    def parse(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
        return number

    return parse


def add_options(parser: Any) -> None:
    """Command-line options, also read from MENDERSIM_INFLUX_* and shown in the web UI."""
    parser.add_argument(
        "--influx-url",
        type=_http_url,
        default="",
        env_var="MENDERSIM_INFLUX_URL",
        help="InfluxDB (or compatible) base URL; statistics are written only when set",
    )
    parser.add_argument(
        "--influx-token",
        default="",
        env_var="MENDERSIM_INFLUX_TOKEN",
        is_secret=True,
        help="API token (InfluxDB 1.8: 'user:password'); prefer the environment variable or "
        "--influx-token-file: a command line is visible in ps",
    )
    parser.add_argument(
        "--influx-token-file",
        default="",
        env_var="MENDERSIM_INFLUX_TOKEN_FILE",
        include_in_web_ui=False,
        help="File holding the API token (read at each test start)",
    )
    parser.add_argument(
        "--influx-org",
        default="",
        env_var="MENDERSIM_INFLUX_ORG",
        help="Organisation",
    )
    parser.add_argument(
        "--influx-bucket",
        default="mendersim",
        env_var="MENDERSIM_INFLUX_BUCKET",
        help="Bucket (InfluxDB 1.8: 'database/retention-policy')",
    )
    parser.add_argument(
        "--influx-interval",
        type=_positive(float),
        default=10.0,
        env_var="MENDERSIM_INFLUX_INTERVAL",
        help="Seconds between two writes (default 10)",
    )
    parser.add_argument(
        "--influx-run-id",
        default="",
        env_var="MENDERSIM_INFLUX_RUN_ID",
        help="Tag that tells this run apart (default: the start time, e.g. 20261122-143000)",
    )
    parser.add_argument(
        "--influx-buffer",
        type=_positive(int),
        default=100_000,
        env_var="MENDERSIM_INFLUX_BUFFER",
        help="Most points held while the server is slow; older ones are dropped beyond it",
    )


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str
    token: str
    org: str
    bucket: str
    interval_s: float
    run_id: str
    buffer: int
    tags: tuple[tuple[str, str], ...] = ()  # run metadata on every point (RunInfo.tags)
    description: str = ""

    @classmethod
    def from_options(cls, options: Any) -> InfluxSettings:
        return cls(
            url=options.influx_url or "",
            token=secrets.token_from(
                options.influx_token or "",
                getattr(options, "influx_token_file", "") or "",
                "--influx-token-file",
            ),
            org=options.influx_org or "",
            bucket=options.influx_bucket,
            interval_s=float(options.influx_interval),
            run_id=options.influx_run_id or "",
            buffer=int(options.influx_buffer),
            tags=tuple(RunInfo.from_options(options).tags().items()),
            description=RunInfo.from_options(options).description,
        )

    def connection(self) -> tuple[str, str, str]:
        return self.url, self.token, self.org


def new_run_id(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))


def step_points(interval: Interval, run_id: str, worker: str, ts_ms: int) -> list[Point]:
    """One point per step, plus one per error kind, for one interval."""
    points = []
    for (step, request_type, profile), stats in interval.steps.items():
        tags = {"run_id": run_id, "worker": worker, "step": step, "request_type": request_type}
        if profile:
            tags["profile"] = profile
        points.append(_point(STEP, tags, stats.fields(interval.seconds), ts_ms))
        for kind, count in stats.errors.items():
            points.append(_point(ERRORS, {**tags, "kind": kind}, {"count": count}, ts_ms))
    return points


def fleet_points(
    snapshot: FleetSnapshot, previous: FleetSnapshot | None, run_id: str, ts_ms: int
) -> list[Point]:
    """The master's view of the fleet: counts by status and state, outcomes, throughput, lag."""
    tags = {"run_id": run_id}
    fields: dict[str, float | int] = {
        "download_bytes": snapshot.download_bytes,
        "download_seconds": snapshot.download_seconds,
        "scheduler_lag_p99_s": snapshot.scheduler_lag_p99_s,
        "scheduler_lag_max_s": snapshot.scheduler_lag_max_s,
        "rollout_targets": snapshot.rollout_targets,
    }
    if previous is not None:
        seconds = snapshot.download_seconds - previous.download_seconds
        if seconds > 0:
            # Mean throughput of the downloads that finished within this interval.
            fields["download_throughput_bps"] = (
                snapshot.download_bytes - previous.download_bytes
            ) / seconds
    if snapshot.rollout_started_at is not None:
        fields["rollout_elapsed_s"] = max(ts_ms / 1000 - snapshot.rollout_started_at, 0.0)
    if snapshot.rollout_finished_s is not None:
        fields["rollout_finished_s"] = snapshot.rollout_finished_s
    points = [_point(FLEET, tags, fields, ts_ms)]
    for measurement, tag, counts in (
        (FLEET_DEVICES, "status", snapshot.devices_by_status),
        (DEPLOYMENTS, "state", snapshot.deployments_by_state),
        (OUTCOMES, "outcome", snapshot.outcomes),
    ):
        points.extend(
            _point(measurement, {**tags, tag: key}, {"count": count}, ts_ms)
            for key, count in counts.items()
        )
    return points


def run_point(run_id: str, users: int, workers: int, ts_ms: int, description: str = "") -> Point:
    point = _point(RUN, {"run_id": run_id}, {"users": users, "workers": workers}, ts_ms)
    return point.field("description", description) if description else point


def with_tags(points: list[Point], tags: Iterable[tuple[str, str]]) -> list[Point]:
    """Run metadata (environment, version under test) on every point, so nights can be
    grouped and compared by them."""
    tags = tuple(tags)
    for point in points:
        for key, value in tags:
            point.tag(key, value)
    return points


@dataclass(frozen=True, slots=True)
class GeneratorHealth:
    """One process's own load, so a saturated generator is not mistaken for a slow server."""

    cpu_percent: float
    rss_bytes: int
    dropped_points: int
    buffered_points: int


def generator_point(health: GeneratorHealth, run_id: str, worker: str, ts_ms: int) -> Point:
    fields = {
        "cpu_percent": health.cpu_percent,
        "rss_bytes": health.rss_bytes,
        "dropped_points": health.dropped_points,
        "buffered_points": health.buffered_points,
    }
    return _point(GENERATOR, {"run_id": run_id, "worker": worker}, fields, ts_ms)


def _point(
    measurement: str, tags: dict[str, str], fields: dict[str, float | int], ts_ms: int
) -> Point:
    point = Point(measurement).time(ts_ms, WritePrecision.MS)
    for key, value in tags.items():
        point.tag(key, value)
    for key, value in fields.items():
        point.field(key, value)
    return point


class InfluxListener:
    """Aggregates one process's request events and writes them, and the fleet, to InfluxDB."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.settings: InfluxSettings | None = None
        self.dropped_points = 0
        self._aggregator = IntervalAggregator(time.time())
        self._buffer: deque[Point] = deque()
        self._client: InfluxDBClient | None = None
        self._write_api: Any = None
        self._wake = Event()
        self._ticker: gevent.Greenlet | None = None
        self._writer: gevent.Greenlet | None = None
        self._stopping = False
        self._recording = False
        self._generated_run_id = ""
        self._last_ts_ms = 0
        self._last_warning = -WARNING_EVERY_S
        self._previous_snapshot: FleetSnapshot | None = None
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement

    # -- event hooks ------------------------------------------------------------------------

    def on_test_start(self, environment: Environment, **_: Any) -> None:
        options = environment.parsed_options
        if options is None or not options.influx_url:
            return
        if not isinstance(environment.runner, WorkerRunner) and (
            not options.influx_run_id or options.influx_run_id == self._generated_run_id
        ):
            # A fresh id per test; stored in the options so the master sends it to its workers.
            self._generated_run_id = options.influx_run_id = new_run_id(time.time())
        try:
            settings = InfluxSettings.from_options(options)
        except ConfigError as exc:  # the token file went away since start-up
            logger.error("statistics not written: %s", exc)
            return
        if self.settings is None or self.settings.connection() != settings.connection():
            self._connect(settings)
        self.settings = settings
        self._buffer = deque(self._buffer, maxlen=settings.buffer)
        if not self._recording:
            environment.events.request.add_listener(self._aggregator.record)
            measures.of(environment).measured.add_listener(self._aggregator.record)
            self._recording = True
        self._aggregator.drain(time.time())  # requests before this test belong to none
        if self._ticker is None:
            self._stopping = False
            self._ticker = gevent.spawn(self._tick)
            self._writer = gevent.spawn(self._write_loop)
        logger.info(
            "Writing statistics to %s bucket %r every %gs as run %s",
            settings.url,
            settings.bucket,
            settings.interval_s,
            settings.run_id,
        )

    def on_test_stop(self, **_: Any) -> None:
        self.flush()

    def on_quitting(self, **_: Any) -> None:
        self.flush()

    def on_quit(self, **_: Any) -> None:
        """The very end: users have stopped (SIGTERM stops them after `quitting`)."""
        if self.settings is None:
            return
        if self._ticker is not None:
            self._ticker.kill()
            self._stopping = True  # the writer finishes the batch it is writing, then stops
            self._wake.set()
            self._writer.join(timeout=self._timeout_s() + 1)
            self._writer.kill()
            self._ticker = self._writer = None
        self.flush()
        if self.dropped_points:
            logger.warning(
                "%d statistics points could not be written to %s",
                self.dropped_points,
                self.settings.url,
            )
        if self._client is not None:
            self._client.close()
            self._client = None
        self.settings = None  # nothing is written after this

    # -- collecting and writing ---------------------------------------------------------------

    def flush(self) -> None:
        """Collect the current interval and write everything buffered, now."""
        if self.settings is None:
            return
        self.collect()
        self._drain(final=True)

    def collect(self) -> None:
        """Turn the interval that just ended into points in the buffer."""
        settings = self.settings
        if settings is None:
            return
        now = time.time()
        ts_ms = max(int(now * 1000), self._last_ts_ms + 1)  # same tags, same ms would overwrite
        self._last_ts_ms = ts_ms
        worker = self._worker_name()
        points = step_points(self._aggregator.drain(now), settings.run_id, worker, ts_ms)
        if not isinstance(self.environment.runner, WorkerRunner):
            points.extend(self._run_points(settings.run_id, ts_ms))
        points.append(self._generator_point(settings.run_id, worker, ts_ms))
        self._enqueue(with_tags(points, settings.tags))

    def _enqueue(self, points: Iterable[Point]) -> None:
        buffer = self._buffer
        for point in points:
            if len(buffer) == buffer.maxlen:
                self.dropped_points += 1  # the deque drops its oldest point on append
            buffer.append(point)
        self._wake.set()

    def _run_points(self, run_id: str, ts_ms: int) -> list[Point]:
        runner = self.environment.runner
        workers = runner.worker_count if isinstance(runner, MasterRunner) else 1
        description = self.settings.description if self.settings else ""
        points = [run_point(run_id, runner.user_count, workers, ts_ms, description)]
        fleet = getattr(self.environment, "mendersim_fleet", None)
        if fleet is None:
            return points
        try:
            snapshot = fleet.snapshot()
        except Exception as exc:  # the fleet's own bug must not stop the statistics
            self._warn("Fleet snapshot failed, fleet points skipped: %r", exc)
            return points
        points.extend(fleet_points(snapshot, self._previous_snapshot, run_id, ts_ms))
        self._previous_snapshot = snapshot
        return points

    def _generator_point(self, run_id: str, worker: str, ts_ms: int) -> Point:
        health = GeneratorHealth(
            cpu_percent=self._process.cpu_percent(None),
            rss_bytes=self._process.memory_info().rss,
            dropped_points=self.dropped_points,
            buffered_points=len(self._buffer),
        )
        return generator_point(health, run_id, worker, ts_ms)

    def _worker_name(self) -> str:
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            return f"worker-{runner.worker_index}"
        if isinstance(runner, MasterRunner):
            return "master"
        return "local"

    def _tick(self) -> None:
        while True:
            gevent.sleep(self.settings.interval_s if self.settings else 1.0)
            self.collect()

    def _write_loop(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            self._drain(final=False)

    def _drain(self, final: bool) -> None:
        """Write the buffer in batches; a failed batch is dropped and counted. During the run
        the rest waits for the next interval, so a dead server costs one timeout per interval;
        at the end nothing can wait, so the first failure drops everything left.

        The writer greenlet and a flush may drain at once: each pops its own batches."""
        settings = self.settings
        while self._buffer and settings is not None and (final or not self._stopping):
            batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
            try:
                self._write_api.write(
                    bucket=settings.bucket,
                    org=settings.org,
                    record=batch,
                    write_precision=WritePrecision.MS,
                )
            except Exception as exc:
                lost = len(batch)
                if final:
                    lost += len(self._buffer)
                    self._buffer.clear()
                self.dropped_points += lost
                self._warn(
                    "Writing to InfluxDB at %s failed (%s); %d points dropped so far",
                    settings.url,
                    _describe(exc),
                    self.dropped_points,
                )
                return

    def _connect(self, settings: InfluxSettings) -> None:
        if self._client is not None:
            self._client.close()
        timeout_ms = int(self._timeout_s(settings) * 1000)
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token or None,
            org=settings.org or None,
            timeout=timeout_ms,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def _timeout_s(self, settings: InfluxSettings | None = None) -> float:
        """A write may take one interval at most, so a slow server never piles writes up."""
        settings = settings or self.settings
        return min(settings.interval_s, MAX_WRITE_TIMEOUT_S) if settings else MAX_WRITE_TIMEOUT_S

    def _warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARNING_EVERY_S:
            self._last_warning = now
            logger.warning(message, *args)


def _describe(exc: Exception) -> str:
    """Exception class and the first line of its text; influxdb-client's are multi-line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def setup(events: Any) -> None:
    """Add the options and attach a listener to every Environment Locust creates."""
    events.init_command_line_parser.add_listener(add_options)

    def on_init(environment: Environment, **_: Any) -> None:
        options = environment.parsed_options
        if options is not None and getattr(options, "influx_token_file", ""):
            try:  # a token file that cannot be read stops the run before it starts
                secrets.token_from("", options.influx_token_file, "--influx-token-file")
            except ConfigError as exc:
                print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
                sys.exit(exc.exit_code)
        listener = InfluxListener(environment)
        environment.events.test_start.add_listener(listener.on_test_start)
        environment.events.test_stop.add_listener(listener.on_test_stop)
        environment.events.quitting.add_listener(listener.on_quitting)
        environment.events.quit.add_listener(listener.on_quit)

    events.init.add_listener(on_init)
