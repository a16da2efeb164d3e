"""Standalone runs: the embedded server, a rollout, SIGTERM, and refused configurations."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time

import pytest
from harness_helpers import (
    LOCUST,
    REPO,
    TIME_SCALE,
    device_rows,
    locust,
    only_requests,
    simulator_log,
    stats_rows,
)

pytestmark = pytest.mark.integration


def _statuses(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        # the embedded server's answers of the last run
        query = "SELECT status, COUNT(*) FROM acceptance WHERE server = 'embedded' GROUP BY 1"
        return dict(conn.execute(query))


def test_headless_standalone_with_the_embedded_server_and_a_rollout(small_fleet, tmp_path):
    run = locust(
        "--headless", "-u", "40", "-r", "40", "-t", "20s",
        "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "report.html"),
        "--mendersim-time-scale", TIME_SCALE, "--mendersim-scenario", "rollout",
        "--mendersim-rollout-share", "0.5", "--mendersim-rollout-artifact-size", "16384",
        log=tmp_path / "run.log",
        env={"MENDERSIM_DB": str(small_fleet)},  # options also come from the environment
    )  # fmt: skip
    assert run.wait(timeout=90) == 0, (tmp_path / "run.log").read_text()[-3000:]
    log = (tmp_path / "run.log").read_text()
    assert "embedded Mender server at http://127.0.0.1:" in log
    assert "rollout: all 20 targets finished" in log
    # The console talks: a progress line every 10 s, a summary at the end.
    assert re.search(r"mendersim: 1\d s: 40 devices, \d+ accepted, \d+ deploying", log), log
    summary = log[log.index("mendersim summary") :]
    assert "devices accepted by the server in this run: 40" in summary
    assert re.search(r"rollout: 20 of 20 targets, \d+\.\d s", summary), summary
    assert re.search(r"POST auth: \d+ requests, 0 failed, p95 \d+ ms", summary), summary
    assert "scheduler lag max:" in summary
    # Device decisions go to the simulator log, not to the console.
    assert "accepted after" not in log
    decisions = simulator_log(tmp_path / "run.log").read_text()
    assert len(re.findall(r"device \S+: accepted after", decisions)) == 40
    assert only_requests(stats_rows(tmp_path / "run"))
    rows = device_rows(tmp_path)
    assert int(rows[("DEVICE", "time to accepted")]["Request Count"]) == 40
    outcomes = sum(
        int(r["Request Count"]) for (t, n), r in rows.items() if n.startswith("outcome:")
    )
    assert outcomes == 20
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert _statuses(small_fleet) == {"accepted": 40}
    with sqlite3.connect(small_fleet) as conn:
        assert conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0] == 20


def test_sigterm_stops_devices_writes_the_store_and_the_reports(small_fleet, tmp_path):
    run = locust(
        "--headless", "-u", "40", "-r", "40", "-t", "120s",
        "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "report.html"),
        "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
        log=tmp_path / "run.log",
    )  # fmt: skip
    log_path = tmp_path / "run.log"
    deadline = time.monotonic() + 60
    while "All users spawned" not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline and run.poll() is None, log_path.read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(4)  # every device authenticates within one (scaled) poll interval
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert int(stats_rows(tmp_path / "run")[("POST", "auth")]["Request Count"]) >= 40
    assert _statuses(small_fleet) == {"accepted": 40}


def test_more_users_than_devices_is_a_one_line_error(small_fleet, tmp_path):
    result = subprocess.run(
        [*LOCUST, "--headless", "-u", "41", "-t", "5s", "--mendersim-db", str(small_fleet)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2
    assert "mendersim: error: asked for 41 users but the fleet has 40 devices" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mendersim-db", "/nonexistent/fleet.db"], "no such seed store"),
        (["--mendersim-time-scale", "0"], "--mendersim-time-scale: must be more than zero"),
        (["--mendersim-rollout-share", "1.5"], "--mendersim-rollout-share: 1.5 is not in (0, 1]"),
    ],
)
def test_bad_options_are_one_line_errors(small_fleet, args, message):
    result = subprocess.run(
        [*LOCUST, "--headless", "-u", "1", "-t", "5s", "--mendersim-db", str(small_fleet), *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_processes_share_the_fleet_without_overlap(small_fleet, tmp_path):
    run = locust(
        "--processes", "2", "--headless", "-u", "40", "-r", "40", "-t", "8s",
        "--csv", str(tmp_path / "run"), "--mendersim-db", str(small_fleet),
        "--mendersim-time-scale", TIME_SCALE,
        log=tmp_path / "run.log",
    )  # fmt: skip
    assert run.wait(timeout=90) == 0, (tmp_path / "run.log").read_text()[-3000:]
    log = (tmp_path / "run.log").read_text()
    leased = dict(re.findall(r"worker (\S+): \d+ more devices, (\d+) leased", log))
    assert len(leased) == 2 and sum(int(n) for n in leased.values()) == 40
    assert only_requests(stats_rows(tmp_path / "run"))
    assert int(device_rows(tmp_path)[("DEVICE", "time to accepted")]["Request Count"]) == 40
    assert _statuses(small_fleet) == {"accepted": 40}
