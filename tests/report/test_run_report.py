"""The run report from a real short run: a rollout with failures against the embedded server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mendersim.server.process import running_server

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "harness"))
from harness_helpers import TIME_SCALE, locust, seed  # noqa: E402
from report_helpers import assert_draws  # noqa: E402
from rollout_checks import check_failure_logs, check_report, rollout_args, server_side  # noqa: E402

pytestmark = pytest.mark.integration
FLEET = 40


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    db = seed(tmp, [{"profile": "automotive", "count": FLEET}])
    folder = tmp / "run"
    with running_server("--error-rate", "next=0.05:503", "--fault-seed", "3") as server:
        run = locust(
            "--headless", "-u", str(FLEET), "-r", str(FLEET), "-t", "30s",
            "--mendersim-time-scale", TIME_SCALE, "--mendersim-rollout-delay", "8",
            *rollout_args(server, db, folder),
            log=tmp / "run.log",
        )  # fmt: skip
        code = run.wait(timeout=90)
        log = (tmp / "run.log").read_text()
        assert code == 1, log[-3000:]  # Locust's own verdict on the injected failures
        assert f"run report: {folder / 'mendersim-report.html'}" in log
        return folder, *server_side(server)


def test_report_figures_match_the_csvs_and_the_server(run_dir):
    folder, statistics, status, logs = run_dir
    check_report(folder, FLEET, statistics, status)
    assert len(logs) == statistics["failure"]  # every failed device uploaded its log
    check_failure_logs(folder, statistics, logs)


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


def test_charts_draw_in_headless_chromium(run_dir):
    assert_draws(run_dir[0] / "mendersim-report.html")
