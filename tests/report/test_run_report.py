"""The run report from a real short run: a rollout with failures against the embedded server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mendersim.server.process import running_server

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "harness"))
from harness_helpers import TIME_SCALE, locust, seed  # noqa: E402
from report_helpers import assert_draws, csv_rows, parse, rows_by  # noqa: E402

pytestmark = pytest.mark.integration
FLEET = 40


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    db = seed(tmp, [{"profile": "automotive", "count": FLEET}])
    with running_server("--error-rate", "next=0.05:503", "--fault-seed", "3") as server:
        run = locust(
            "--headless", "-u", str(FLEET), "-r", str(FLEET), "-t", "30s", "--host", server.url,
            "--mendersim-mgmt-token", server.mgmt_token, "--mendersim-db", str(db),
            "--mendersim-time-scale", TIME_SCALE, "--mendersim-scenario", "rollout",
            "--mendersim-rollout-share", "0.5", "--mendersim-rollout-artifact-size", "16384",
            "--mendersim-rollout-delay", "8", "--csv", str(tmp / "run" / "run"),
            "--thresholds", str(REPO / "profiles/thresholds/smoke.yaml"),
            "--thresholds-summary", str(tmp / "run" / "summary.md"),
            log=tmp / "run.log",
        )  # fmt: skip
        code = run.wait(timeout=90)
        log = (tmp / "run.log").read_text()
        assert code == 1, log[-3000:]  # Locust's own verdict on the injected failures
        assert f"run report: {tmp / 'run' / 'mendersim-report.html'}" in log
        mgmt = server.management()
        (deployment,) = mgmt.list_deployments()
        statistics = mgmt.deployment_statistics(deployment["id"])
        status = mgmt.mendersim_status()
        logs = {
            d["id"]: mgmt.device_log(deployment["id"], d["id"])
            for d in mgmt.deployment_devices(deployment["id"], "failure")
        }
    return tmp / "run", statistics, status, logs


def test_report_figures_match_the_csvs_and_the_server(run_dir):
    folder, statistics, status, _ = run_dir
    report = folder / "mendersim-report.html"
    page = parse(report)
    assert page.sections == ["run", "fleet", "rollout", "steps"]
    assert not page.external  # nothing to fetch: plotly.js is inline
    # Per HTTP step: counts and failures as in Locust's CSV, and no device rows there.
    locust_rows = csv_rows(folder / "run_stats.csv")
    steps = rows_by(page.tables["step-figures"], 0, 1)
    http = {k: r for k, r in locust_rows.items() if r["Name"] != "Aggregated"}
    assert set(steps) == set(http)
    for key, row in http.items():
        # Locust writes its CSV a moment before the run's last sample: never more than it.
        assert int(row["Request Count"]) <= int(steps[key][2]), key
        assert int(row["Failure Count"]) <= int(steps[key][3]), key
    # What the server received, exchange for exchange.
    received = status["requests"]
    for (method, name), route in (
        (("POST", "deployments/next"), "POST /api/devices/v2/deployments/device/deployments/next"),
        (("POST", "auth"), "POST /api/devices/v1/authentication/auth_requests"),
    ):
        assert int(steps[(method, name)][2]) == sum(received[route].values()), name
    next_route = "POST /api/devices/v2/deployments/device/deployments/next"
    assert int(steps[("POST", "deployments/next")][3]) == received[next_route]["503"]
    assert int(http[("POST", "deployments/next")]["Failure Count"]) > 0  # the injected 503s
    kinds = dict(page.tables["failure-kinds"][1:])
    assert int(kinds["HTTP 503"]) == sum(int(row[3]) for row in steps.values())
    # Device-level figures as in device_stats.csv.
    device = rows_by(page.tables["device-figures"], 0, 1)
    measured = csv_rows(folder / "device_stats.csv")
    assert set(device) == set(measured)
    for key, row in measured.items():
        assert device[key][2] == row["Request Count"], key
    assert device[("DEVICE", "time to accepted")][2] == str(FLEET)
    # Outcomes and the rollout as the server saw them.
    outcomes = dict(page.tables["outcomes"][1:])
    assert int(outcomes["success"]) == statistics["success"]
    assert int(outcomes["failure"]) == statistics["failure"] > 0
    reasons = page.tables["failure-reasons"][1:]
    assert sum(int(n) for _, n in reasons) == statistics["failure"]
    marks = dict(page.tables["rollout-marks"][1:])
    assert all(re.fullmatch(r"[\d.e+]+", marks[m]) for m in ("50 %", "90 %", "100 %"))
    assert float(marks["50 %"]) <= float(marks["90 %"]) <= float(marks["100 %"])
    final = dict(page.tables["fleet-final"][1:])
    assert int(final["accepted"]) == status["devices"]["accepted"] == FLEET
    # The verdicts as the job summary has them, and the summary points to the report.
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert f"Run report: `{report}` ({FLEET} devices accepted" in summary
    for rule, _limit, _measured, verdict in page.tables["thresholds"][1:]:
        assert re.search(rf"\| {re.escape(rule)} \|.*{verdict.split()[0]}", summary), rule
    facts = dict(page.tables["run-facts"][1:])
    assert facts["devices in the fleet"] == str(FLEET)
    assert "mgmt_token" not in report.read_text(encoding="utf-8").split("<script>")[0]
    for chart in ("chart-devices", "chart-rollout", "chart-http-latency", "chart-device-durations"):
        assert chart in page.charts


def test_regenerating_gives_the_same_report(run_dir):
    folder = run_dir[0]
    before = (folder / "mendersim-report.html").read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "report", str(folder)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (folder / "mendersim-report.html").read_text(encoding="utf-8") == before


def test_a_folder_without_a_record_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "report", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "run.json: no run record here" in result.stderr and "Traceback" not in result.stderr


def test_failure_logs_are_grouped_as_the_server_has_them(run_dir):
    folder, statistics, _, logs = run_dir
    page = parse(folder / "mendersim-report.html")
    assert len(logs) == statistics["failure"] > 0
    devices: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for text in logs.values():
        fields = [line.split(" ", 2) for line in text.splitlines()]  # time, level, message
        errors = [message for _, level, message in fields if level == "error"]
        lines.update(errors)
        devices.update(set(errors))
    table = {row[0]: (int(row[1]), int(row[2])) for row in page.tables["failure-log-lines"][1:]}
    assert table == {m: (devices[m], lines[m]) for m in devices}
    # the lines the failure modes write (device/failures.py) are among them
    written = ("Update Module output", "Kernel panic", "Unexpected error", "ArtifactVerifyReboot")
    assert any(m.startswith(written) for m in table), table


def test_charts_draw_in_headless_chromium(run_dir):
    assert_draws(run_dir[0] / "mendersim-report.html")
