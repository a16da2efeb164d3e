"""Runs that cannot measure anything stop before spawning, or fail loudly when the server
accepts none of the fleet."""

from __future__ import annotations

import subprocess

import pytest
from harness_helpers import LOCUST, REPO, TIME_SCALE, locust

from mendersim.server.process import running_server

pytestmark = pytest.mark.integration


def _headless(*args: str, tmp_path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LOCUST, "--headless", "-u", "5", "-r", "5", "-t", "5s", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "MENDERSIM_LOG_FILE": str(tmp_path / "sim.log"),
             **(env or {})},
    )  # fmt: skip


def test_a_rollout_without_a_token_is_refused_before_spawning(small_fleet, tmp_path):
    done = _headless(
        "--host", "http://127.0.0.1:9", "--mendersim-db", str(small_fleet),
        "--mendersim-scenario", "rollout", tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "--mendersim-mgmt-token" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "Ramping" not in done.stderr


def test_unknown_steps_in_a_thresholds_file_are_refused_at_start_up(small_fleet, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("steps:\n  deployment/next: {p95_ms: 100}\n", encoding="utf-8")
    done = _headless(
        "--mendersim-db", str(small_fleet), "--thresholds", str(rules), tmp_path=tmp_path
    )
    assert done.returncode == 2
    assert "steps.deployment/next: no such step" in done.stderr
    assert "Ramping" not in done.stderr


def test_a_server_that_accepts_nobody_fails_the_accepted_share_rule(small_fleet, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("fleet:\n  accepted_share: 1.0\n", encoding="utf-8")
    with running_server("--acceptance", "manual") as server:
        run = locust(
            "--headless", "-u", "10", "-r", "10", "-t", "8s", "--host", server.url,
            "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
            "--mendersim-accept-timeout", "3", "--thresholds", str(rules),
            log=tmp_path / "run.log",
        )  # fmt: skip
        code = run.wait(timeout=60)
        pending = server.management().count_devices("pending")
    output = (tmp_path / "run.log").read_text()
    assert code == 1, output[-3000:]
    assert pending == 10  # the devices did ask, the server accepted none
    assert "only 0 of 10 devices accepted by" in output
    assert "fleet.accepted_share" in output and "FAIL" in output
    assert "  thresholds: FAILED" in output[output.index("mendersim summary") :]


def test_a_fleet_that_cannot_be_seeded_is_one_error_line(tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("groups: [{profile: no-such-profile, count: 1}]\n", encoding="utf-8")
    db = tmp_path / "fleet.db"
    done = _headless(
        "--mendersim-db", str(db), "--mendersim-fleet", str(fleet), tmp_path=tmp_path
    )  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"mendersim: error: {fleet}: groups[0].profile: unknown profile 'no-such-profile'"
        f" (searched {tmp_path.parent}/industries, {REPO}/profiles/industries)"
    ], done.stderr
    assert "Traceback" not in done.stderr and not db.exists()


def test_a_rollout_with_a_token_the_server_refuses_stops_before_spawning(small_fleet, tmp_path):
    wrong = "wrong-token-93c1f0d27b"
    with running_server() as server:
        done = _headless(
            "--host", server.url, "--mendersim-db", str(small_fleet),
            "--mendersim-scenario", "rollout", tmp_path=tmp_path,
            env={"MENDERSIM_MGMT_TOKEN": wrong},
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"mendersim: error: management token: refused by {server.url}")
    assert wrong not in done.stderr + done.stdout and "Ramping" not in done.stderr
