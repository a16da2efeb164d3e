"""Real Locust runs (standalone, and a master with two workers) write to a real VictoriaMetrics
through influxdb-client's v2 write API; the points carry the right tags and add up to Locust's
own totals. A dead server costs warnings and dropped points, never the run."""

from __future__ import annotations

import collections
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from tsdb import free_port, victoria_metrics

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).with_name("steps_locustfile.py")
RUN_TIMEOUT_S = 60
PROFILES = {"automotive", "medical"}


@pytest.fixture(scope="module")
def vm(tmp_path_factory) -> str:
    with victoria_metrics(tmp_path_factory.mktemp("vm")) as url:
        yield url


def locust(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", *args],
        cwd=cwd,
        env={**_base_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MENDERSIM_", "LOCUST_"))}


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, out + err


# steps_locustfile.py: one auth per poll, one "deployment duration" every fifth poll, and every
# user finishes its polls long before the runs end.
POLLS_PER_DEPLOYMENT = 5
MAX_POLLS = 30  # the locustfile's STEPS_MAX_POLLS default


def locust_totals(csv_prefix: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(step, request type) -> (requests, failures) from Locust's own --csv output, plus the
    device-level figure, which is written to InfluxDB but kept out of Locust's statistics."""
    with open(f"{csv_prefix}_stats.csv", newline="") as stream:
        totals = {
            (row["Name"], row["Type"]): (int(row["Request Count"]), int(row["Failure Count"]))
            for row in csv.DictReader(stream)
            if row["Name"] != "Aggregated"
        }
    assert not any(kind == "DEVICE" for _, kind in totals), "a device figure in Locust's stats"
    polls = totals[("auth", "POST")][0]
    totals[("deployment duration", "DEVICE")] = (polls // POLLS_PER_DEPLOYMENT, 0)
    return totals


def _csv_polls(csv_prefix: Path) -> int:
    try:
        return locust_totals(csv_prefix)[("auth", "POST")][0]
    except (OSError, KeyError):  # not written yet
        return 0


def export(vm: str, selector: str) -> list[dict]:
    answer = requests.get(f"{vm}/api/v1/export", params={"match[]": selector}, timeout=10)
    answer.raise_for_status()
    return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


def step_totals(vm: str, run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
    totals: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for field, slot in (("count", 0), ("failures", 1)):
        for series in export(vm, f'{{__name__="mendersim_step_{field}",run_id="{run_id}"}}'):
            labels = series["metric"]
            totals[(labels["step"], labels["request_type"])][slot] += int(sum(series["values"]))
    return {key: tuple(value) for key, value in totals.items()}


def wait_for_totals(vm: str, run_id: str, expected: dict) -> dict:
    """VictoriaMetrics makes fresh samples searchable within a second or so."""
    deadline = time.monotonic() + 15
    while True:
        found = step_totals(vm, run_id)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_standalone_run_points_match_locust_totals(vm, tmp_path):
    # An interval longer than the run: only the flush when the run stops writes anything.
    code, output = finish(
        locust(
            tmp_path,
            "-u",
            "6",
            "-r",
            "6",
            "-t",
            "4",
            "--csv",
            str(tmp_path / "run"),
            "--influx-url",
            vm,
            "--influx-interval",
            "30",
            "--influx-run-id",
            "standalone-1",
        )
    )
    assert code == 1, output  # the locustfile's inventory failures: Locust's default exit code
    expected = locust_totals(tmp_path / "run")
    assert expected[("inventory", "PATCH")][1] > 0
    assert wait_for_totals(vm, "standalone-1", expected) == expected

    steps = export(vm, '{__name__="mendersim_step_count",run_id="standalone-1"}')
    assert {s["metric"]["worker"] for s in steps} == {"local"}
    assert {s["metric"]["profile"] for s in steps} == PROFILES
    assert all(
        set(s["metric"]) == {"__name__", "run_id", "worker", "step", "request_type", "profile"}
        for s in steps
    )

    errors = export(vm, '{__name__="mendersim_errors_count",run_id="standalone-1"}')
    assert {(s["metric"]["step"], s["metric"]["kind"]) for s in errors} == {
        ("inventory", "http_503")
    }
    assert sum(sum(s["values"]) for s in errors) == expected[("inventory", "PATCH")][1]
    assert "device 42" not in json.dumps(errors)  # never the error text

    p95 = export(vm, '{__name__="mendersim_step_rt_p95",run_id="standalone-1",step="auth"}')
    assert {v for s in p95 for v in s["values"]} == {20}

    fleet = export(vm, '{__name__="mendersim_fleet_devices_count",run_id="standalone-1"}')
    assert {s["metric"]["status"] for s in fleet} == {"accepted"}
    assert export(vm, '{__name__="mendersim_run_users",run_id="standalone-1"}')
    health = export(
        vm, '{__name__=~"mendersim_generator_(cpu_percent|rss_bytes)",run_id="standalone-1"}'
    )
    assert {s["metric"]["worker"] for s in health} == {"local"}
    assert all(
        v > 0 for s in health if s["metric"]["__name__"].endswith("rss_bytes") for v in s["values"]
    )


def test_distributed_run_points_match_locust_totals(vm, tmp_path):
    port = free_port()
    master = locust(
        tmp_path,
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        "2",
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "6",
        "--csv",
        str(tmp_path / "run"),
        "--influx-url",
        vm,
        "--influx-interval",
        "1",
        "--test-env",
        "nightly-ci",
        "--test-version",
        "4.1.0",
    )
    workers = [
        locust(tmp_path, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
        for _ in range(2)
    ]
    code, output = finish(master)
    worker_codes = [finish(worker)[0] for worker in workers]
    assert code == 1, output
    assert worker_codes == [0, 0]  # workers leave the verdict to the master

    run_ids = {s["metric"]["run_id"] for s in export(vm, '{__name__="mendersim_run_users"}')}
    run_ids.discard("standalone-1")
    [run_id] = run_ids  # one id, made by the master and handed to both workers
    assert re.fullmatch(r"\d{8}-\d{6}", run_id)

    expected = locust_totals(tmp_path / "run")
    assert wait_for_totals(vm, run_id, expected) == expected

    steps = export(vm, f'{{__name__="mendersim_step_count",run_id="{run_id}"}}')
    assert {s["metric"]["worker"] for s in steps} == {"worker-0", "worker-1"}
    # The master's run metadata reaches the workers' points as tags.
    assert {(s["metric"]["test_env"], s["metric"]["test_version"]) for s in steps} == {
        ("nightly-ci", "4.1.0")
    }
    health = export(vm, f'{{__name__="mendersim_generator_dropped_points",run_id="{run_id}"}}')
    assert {s["metric"]["worker"] for s in health} == {"master", "worker-0", "worker-1"}
    workers_seen = export(vm, f'{{__name__="mendersim_run_workers",run_id="{run_id}"}}')
    assert max(max(s["values"]) for s in workers_seen) == 2
    users = export(vm, f'{{__name__="mendersim_run_users",run_id="{run_id}"}}')
    assert max(max(s["values"]) for s in users) == 8


def test_dead_server_costs_warnings_not_the_run(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, output = finish(
        locust(
            tmp_path,
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3",
            "--influx-url",
            dead,
            "--influx-interval",
            "1",
            env={"STEPS_FAIL_EVERY": "0"},
        )
    )
    assert code == 0, output
    assert f"Writing to InfluxDB at {dead} failed" in output
    assert output.count(f"Writing to InfluxDB at {dead} failed") == 1  # rate-limited
    dropped = re.search(r"(\d+) statistics points could not be written", output)
    assert dropped and int(dropped.group(1)) > 0, output
    assert "Traceback" not in output


def test_sigterm_flushes_the_last_interval(vm, tmp_path):
    process = locust(
        tmp_path,
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "60",
        "--csv",
        str(tmp_path / "run"),
        "--influx-url",
        vm,
        "--influx-interval",
        "30",
        "--influx-run-id",
        "sigterm-1",
    )
    # SIGTERM once every user has done its polls and Locust's CSV (rewritten every second, and
    # late on a loaded machine) holds the totals; well inside the 30 s interval, so only the
    # flush at SIGTERM writes points.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _csv_polls(tmp_path / "run") < 4 * MAX_POLLS:
        time.sleep(0.5)
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    code, output = finish(process)
    assert code == 1, output  # Locust's own verdict on the failed requests
    expected = locust_totals(tmp_path / "run")
    assert sum(count for count, _ in expected.values()) > 0
    assert wait_for_totals(vm, "sigterm-1", expected) == expected


def test_an_unreadable_token_file_stops_the_run_before_it_starts(tmp_path):
    missing = tmp_path / "no-such-token"
    code, output = finish(
        locust(
            tmp_path,
            "-u",
            "1",
            "-t",
            "3",
            "--influx-url",
            f"http://127.0.0.1:{free_port()}",
            "--influx-token-file",
            str(missing),
        )
    )
    assert code == 2, output
    errors = [line for line in output.splitlines() if "error:" in line]
    reason = "No such file or directory"
    assert errors == [f"mendersim: error: --influx-token-file: {missing}: {reason}"]
    assert "Traceback" not in output
