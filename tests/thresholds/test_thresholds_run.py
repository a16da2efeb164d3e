"""Headless Locust runs judge themselves: exit codes, the printed table, JUnit XML and the
Markdown summary; a bad rules file stops the run before it starts with a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).resolve().parents[1] / "influx" / "steps_locustfile.py"

# The locustfile's steps answer in 10-30 ms; one inventory request in 20 fails.
PASSING = """\
steps:
  auth: {p95_ms: 50, failure_ratio: 0}
  inventory: {p99_ms: 100, failure_ratio: 0.1}
  deployments/next: {avg_ms: 20, min_rps: 1}
fleet:
  deployment_success_rate: 0.99
  update_time_p95_s: 300
  rollout_seconds: 60
  scheduler_lag_max_s: 1
run:
  failure_ratio: 0.05
"""
FAILING = """\
steps:
  auth: {p95_ms: 50}
  inventory: {failure_ratio: 0.01}
  download: {p95_ms: 1000}
fleet:
  deployment_success_rate: 0.999
"""


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MENDERSIM_", "LOCUST_", "GITHUB_"))
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3",
            *args,
        ],
        cwd=tmp_path,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_passing_rules_exit_zero_although_requests_failed(tmp_path):
    rules = write(tmp_path, "pass.yaml", PASSING)
    summary = tmp_path / "github-summary.md"
    done = run(
        tmp_path,
        "--thresholds",
        rules,
        "--thresholds-junit",
        "junit.xml",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Thresholds passed: all 11 rules" in done.stdout
    assert "inventory" in done.stderr  # Locust did see failed requests

    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("11", "0")
    assert suite.find("testcase/failure") is None
    assert "**Thresholds passed: all 11 rules**" in summary.read_text()


def test_failing_rules_exit_one_with_reports(tmp_path):
    rules = write(tmp_path, "fail.yaml", FAILING)
    done = run(
        tmp_path,
        "--thresholds",
        rules,
        "--thresholds-junit",
        "reports/junit.xml",
        # Every second inventory fails: a loaded machine that gives the users only a few polls
        # in the 3 s run still sees failures.
        env={"MENDERSIM_THRESHOLDS_SUMMARY": "reports/summary.md", "STEPS_FAIL_EVERY": "2"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    table = {
        line.split()[0]: line
        for line in done.stdout.splitlines()
        if line.startswith(("steps.", "fleet."))
    }
    assert table["steps.auth.p95_ms"].endswith("PASS")
    assert table["steps.inventory.failure_ratio"].endswith("FAIL")
    assert table["steps.download.p95_ms"].endswith("FAIL (no data)")
    assert table["fleet.deployment_success_rate"].split()[-2:] == ["0.995", "FAIL"]

    root = ET.parse(tmp_path / "reports/junit.xml").getroot()
    failures = {case.get("name"): case.find("failure") for case in root.iter("testcase")}
    assert [name for name, failure in failures.items() if failure is not None] == [
        "steps.inventory.failure_ratio",
        "steps.download.p95_ms",
        "fleet.deployment_success_rate",
    ]
    assert "measured no data" in failures["steps.download.p95_ms"].get("message")

    summary = (tmp_path / "reports/summary.md").read_text()
    assert "**Thresholds FAILED: 3 of 4 rules failed**" in summary
    assert "| steps.download.p95_ms | <= 1000 ms | no data | ❌ FAIL (no data) |" in summary


def test_bad_rules_file_is_a_one_line_error(tmp_path):
    rules = write(tmp_path, "bad.yaml", "steps:\n  auth: {p95: 50}\n")
    done = run(tmp_path, "--thresholds", rules)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, done.stderr
    assert (
        f"{rules}: steps.auth: Additional properties are not allowed ('p95' was unexpected)"
        in errors[0]
    )
    assert "Traceback" not in done.stderr
