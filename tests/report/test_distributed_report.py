"""The run report of a distributed run: a Locust master and two workers (real processes) roll
out to half of the fleet; the master writes the report from what both workers reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "harness"))
from harness_helpers import TIME_SCALE, locust, seed  # noqa: E402
from report_helpers import assert_draws, rows_by  # noqa: E402
from rollout_checks import check_failure_logs, check_report, rollout_args, server_side  # noqa: E402

from mendersim.server.process import free_port, running_server  # noqa: E402

pytestmark = pytest.mark.integration
FLEET = 60


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed-report")
    db = seed(tmp, [{"profile": "automotive", "count": 40}, {"profile": "medical", "count": 20}])
    folder = tmp / "run"
    port = str(free_port())
    with running_server("--error-rate", "next=0.05:503", "--fault-seed", "5") as server:
        master = locust(
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
            "--headless", "--expect-workers", "2", "-u", str(FLEET), "-r", str(FLEET),
            "-t", "35s", "--mendersim-time-scale", TIME_SCALE, "--mendersim-rollout-delay", "10",
            *rollout_args(server, db, folder),
            log=tmp / "master.log",
        )  # fmt: skip
        workers = [
            locust("--worker", "--master-port", port, log=tmp / f"worker{i}.log") for i in range(2)
        ]
        try:
            code = master.wait(timeout=150)
            for worker in workers:
                worker.wait(timeout=30)
        finally:
            for process in (master, *workers):
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
        log = (tmp / "master.log").read_text(errors="replace")
        assert code == 1, log[-3000:]  # Locust's own verdict on the injected failures
        assert f"run report: {folder / 'mendersim-report.html'}" in log
        assert not list(folder.glob("worker*"))  # the workers write no record of their own
        return folder, *server_side(server)


def test_distributed_report_matches_the_csvs_and_the_server(run_dir):
    folder, statistics, status, logs = run_dir
    page = check_report(folder, FLEET, statistics, status)
    check_failure_logs(folder, statistics, logs)
    facts = dict(page.tables["run-facts"][1:])
    assert facts["workers (most at once)"] == "2"
    makeup = dict(page.tables["fleet-makeup"][1:])
    assert sum(int(n) for n in makeup.values()) == FLEET
    assert {k.split(" / ")[0] for k in makeup} == {"automotive", "medical"}
    # both workers' devices reached the master's record: every device was accepted once
    device = rows_by(page.tables["device-figures"], 0, 1)
    assert device[("DEVICE", "time to accepted")][2] == str(FLEET)
    assert device[("HARNESS", "rollout duration")][2] == "1"


def test_distributed_report_draws_and_regenerates_the_same(run_dir):
    folder = run_dir[0]
    report = folder / "mendersim-report.html"
    assert_draws(report)
    before = report.read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "report", str(folder)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert report.read_text(encoding="utf-8") == before
