"""Records into the run folder what the run report is built from, while the run goes on.

`timeline.jsonl`: one line every few seconds with the fleet snapshot and the cumulative
statistics of every HTTP step and every DEVICE/HARNESS figure (counts, failures by kind,
Locust's rounded response-time histogram), so the report can draw rates and percentiles per
interval. At the end: `run.json` (target, options, fleet, outcomes and failure reasons from the
store, threshold verdicts, the embedded server's status, the failed devices' grouped log lines,
the anomaly ground truth's counts) and `device_stats.csv`, the DEVICE and
HARNESS rows that are kept out of Locust's `*_stats.csv`. `mendersim report RUN_DIR` rebuilds
the HTML report from these files alone.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gevent
import locust
from locust.stats import RequestStats, StatsEntry

import mendersim
from mendersim.fleet import acceptance
from mendersim.fleet.acceptance import ServerKey
from mendersim.harness.config.secrets import SECRET_OPTIONS
from mendersim.harness.coordination.fleetview import FleetView
from mendersim.harness.reporting import measures, thresholds
from mendersim.telemetry.truth import read_truth

logger = logging.getLogger(__name__)

SAMPLE_EVERY_S = 2.0
TIMELINE = "timeline.jsonl"
RUN = "run.json"
SERVER_LOG = "server.log"
DEVICE_STATS = "device_stats.csv"
CSV_COLUMNS = (
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "95%",
    "99%",
)


def add_options(parser: Any) -> None:
    parser.add_argument(
        "--mendersim-run-dir",
        default="",
        env_var="MENDERSIM_RUN_DIR",
        help="Folder for the run record and mendersim-report.html (default: the folder of "
        "--html, else "
        "of --csv, else runs/<UTC time>)",
    )


def run_dir_of(parsed: Any) -> Path:
    """Where this run's record goes: the option, else beside Locust's HTML or CSV files."""
    chosen = getattr(parsed, "mendersim_run_dir", "") or ""
    if chosen:
        return Path(chosen)
    for prefix in (getattr(parsed, "html_file", None), getattr(parsed, "csv_prefix", None)):
        if prefix:
            return Path(os.path.dirname(os.path.abspath(prefix)))
    return Path("runs") / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def entry_sample(entry: StatsEntry) -> dict[str, Any]:
    """Cumulative figures of one statistics entry; histogram keys are Locust's rounded ms."""
    return {
        "type": entry.method,
        "name": entry.name,
        "count": entry.num_requests,
        "failures": entry.num_failures,
        "bytes": entry.total_content_length,
        "rt": {str(k): v for k, v in entry.response_times.items()},
    }


def error_text(error: BaseException | str | None) -> str:
    """A failure as its message, on a standalone process and on a master alike: a master holds
    the repr the workers sent (`HttpFailure('HTTP 503')`), a standalone one the exception."""
    if isinstance(error, BaseException):
        return str(error)
    text = str(error)
    quoted = _REPR.fullmatch(text)
    return quoted.group(2) if quoted else text


_REPR = re.compile(r"\w+\((['\"])(.*)\1\)", re.DOTALL)


def _errors(stats: RequestStats) -> list[dict[str, Any]]:
    return [
        {"type": e.method, "name": e.name, "error": error_text(e.error), "count": e.occurrences}
        for e in stats.errors.values()
    ]


def write_device_csv(stats: RequestStats, path: Path) -> None:
    """The DEVICE and HARNESS rows, with Locust's CSV columns (no "Aggregated" row: a sum of
    unlike figures would mean nothing)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for (name, kind), e in sorted(stats.entries.items(), key=lambda item: item[0]):
            if not e.num_requests:
                continue
            writer.writerow(
                [
                    kind,
                    name,
                    e.num_requests,
                    e.num_failures,
                    e.median_response_time,
                    e.avg_response_time,
                    e.min_response_time or 0,
                    e.max_response_time,
                    e.avg_content_length,
                    e.get_response_time_percentile(0.95),
                    e.get_response_time_percentile(0.99),
                ]
            )


class Recorder:
    """On the master or a standalone process: samples the run and writes its record."""

    def __init__(
        self,
        environment: Any,
        view: FleetView,
        db: str,
        fleet_size: int,
        fleet_config: dict[str, Any],
        makeup: dict[str, dict[str, int]],
    ) -> None:
        self.environment = environment
        self.view = view
        self.db = db
        self.fleet_size = fleet_size
        self._poll = fleet_config.get("poll_interval")
        # The store's make-up (SeedStore.makeup), which no run changes: read at the start, not
        # at the exit, where one scan of a million devices costs the stop seconds.
        self._makeup = makeup
        self.run_dir = run_dir_of(environment.parsed_options)
        self.started: float | None = None
        self._greenlet: gevent.Greenlet | None = None

    def server_log(self) -> Path:
        """Where the embedded server's log goes unless told otherwise: into the run folder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.run_dir / SERVER_LOG

    def on_test_start(self, **_: Any) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.started is None:
            self.started = time.time()
            (self.run_dir / TIMELINE).write_text("", encoding="utf-8")
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._sample_loop)

    def _sample_loop(self) -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            try:
                self.sample()
            except Exception as exc:  # a broken sample costs a point of the record, not the run
                logger.warning("run record: sample failed: %r", exc)

    def sample(self) -> None:
        measured = measures.of(self.environment).stats
        line = {
            "t": time.time(),
            "fleet": asdict(self.view.snapshot()),
            "steps": [entry_sample(e) for e in self.environment.stats.entries.values()],
            "measures": [entry_sample(e) for e in measured.entries.values()],
            "errors": _errors(self.environment.stats),
        }
        with open(self.run_dir / TIMELINE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, separators=(",", ":")) + "\n")

    def finish(
        self,
        server_status: dict[str, Any] | None,
        failure_logs: dict[str, Any] | None = None,
        *,
        server: ServerKey,
    ) -> Path | None:
        """The last sample, run.json and device_stats.csv; then the HTML report. Returns the
        report's path, or None when the run never started. `failure_logs`: what the rollout's
        failed devices uploaded (failurelogs.py)."""
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        if self.started is None:
            return None
        self.sample()
        record = self._run_record(server_status, server)
        record["failure_logs"] = failure_logs
        record["anomalies"] = anomaly_counts(self.environment.parsed_options)
        (self.run_dir / RUN).write_text(json.dumps(record, indent=1), encoding="utf-8")
        write_device_csv(measures.of(self.environment).stats, self.run_dir / DEVICE_STATS)
        from mendersim.report.html import write_report

        return write_report(self.run_dir)

    def _poll_interval_s(self) -> float | None:
        """The fleet config's poll interval in real seconds, when it sets one for every
        profile."""
        scale = getattr(self.environment.parsed_options, "mendersim_time_scale", 1.0) or 1.0
        return None if not self._poll else float(self._poll) * scale

    def _store_summary(self, server: ServerKey) -> dict[str, Any]:
        by_status, deployments = _store_state(self.db, self.started or 0.0, server)
        # every device of the store, not only those of this run's profiles
        by_status = _with_new(by_status, sum(self._makeup["by_profile"].values()))
        return {
            "by_profile": self._makeup["by_profile"],
            "by_key_type": self._makeup["by_key_type"],
            "by_status": by_status,
            "by_profile_key": self._makeup["by_profile_key"],
            "deployments": deployments,
        }

    def _run_record(
        self, server_status: dict[str, Any] | None, server: ServerKey
    ) -> dict[str, Any]:
        parsed = self.environment.parsed_options
        options = {
            key: value
            for key, value in sorted(vars(parsed).items())
            if (key.startswith("mendersim_") or key.startswith("influx_") or key in _LOCUST_KEYS)
            and key not in SECRET_OPTIONS
            and isinstance(value, str | int | float | bool | type(None))
        }
        fleet = self.view.snapshot()
        return {
            "host": self.environment.host,
            "started": self.started,
            "finished": time.time(),
            "versions": {"mendersim": mendersim.__version__, "locust": locust.__version__},
            "fleet_size": self.fleet_size,
            "poll_interval_s": self._poll_interval_s(),
            "store": self._store_summary(server),
            "options": options,
            "fleet": asdict(fleet),
            "thresholds": _verdicts(self.environment, fleet),
            "server": server_status,
        }


# Locust's own run options, and the run metadata locust-plugins adds (grouping runs by them).
_LOCUST_KEYS = (
    "num_users",
    "spawn_rate",
    "run_time",
    "headless",
    "expect_workers",
    "processes",
    "test_env",
    "test_version",
    "description",
)


def anomaly_counts(parsed: Any) -> dict[str, Any] | None:
    """The ground truth's anomalies by type and by stream, from the run's truth file and the
    workers' beside it (hub.py names them `<stem>.<worker><suffix>`); None without MQTT."""
    if not getattr(parsed, "mendersim_mqtt_host", ""):
        return None
    path = Path(getattr(parsed, "mendersim_telemetry_truth", "") or "anomalies.jsonl")
    files = sorted({path, *path.parent.glob(f"{path.stem}.*{path.suffix}")})
    by_type: dict[str, int] = {}
    by_stream: dict[str, int] = {}
    read = []
    for file in files:
        if not file.is_file():
            continue
        read.append(file.name)
        for record in read_truth(file):
            by_type[record["type"]] = by_type.get(record["type"], 0) + 1
            stream = f"{record['profile']} / {record['stream']}"
            by_stream[stream] = by_stream.get(stream, 0) + 1
    return {
        "files": read,
        "total": sum(by_type.values()),
        "by_type": dict(sorted(by_type.items())),
        "by_stream": dict(sorted(by_stream.items())),
    }


def _store_state(
    db: str, since: float, server: ServerKey
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Statuses by the run's server, and this run's deployments by result and failure reason,
    from the store (the coordinator has written it by now)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        by_status = dict(conn.execute(acceptance.STATUS_COUNTS, (server.url, server.tenant)))
        reasons = conn.execute(
            "SELECT result, COALESCE(failure_reason, ''), COUNT(*) FROM deployments"
            " WHERE started >= ? GROUP BY 1, 2 ORDER BY 3 DESC",
            (since - 1.0,),
        ).fetchall()
    return by_status, [
        {"result": r or "unfinished", "reason": why, "count": n} for r, why, n in reasons
    ]


def _with_new(by_status: dict[str, int], devices: int) -> dict[str, int]:
    """Devices the server never answered are new to it."""
    answered = sum(by_status.values())
    if devices > answered:
        by_status["new"] = devices - answered
    return dict(sorted(by_status.items()))


def _verdicts(environment: Any, fleet: Any) -> list[dict[str, Any]] | None:
    path = getattr(environment.parsed_options, "thresholds", "")
    if not path:
        return None
    try:
        rules = thresholds.load_rules(path)
    except Exception as exc:  # judge() reports a broken file; the record just says so
        return [{"rule": "rules file", "limit": "", "measured": str(exc), "passed": False}]
    run = thresholds.Measurements(environment.stats, fleet, measures.of(environment).stats)
    return [
        {
            "rule": r.rule,
            "limit": r.limit,
            "measured": r.measured,
            "passed": r.passed,
            "verdict": r.verdict,
        }
        for r in thresholds.evaluate(rules, run)
    ]
