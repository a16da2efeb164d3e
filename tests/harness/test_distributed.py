"""End to end: the embedded server, a Locust master and two workers, a mixed fleet, a rollout."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest
from harness_helpers import (
    TIME_SCALE,
    device_rows,
    devices_in,
    locust,
    only_requests,
    seed,
    stats_rows,
)

from mendersim.fleet.acceptance import ServerKey
from mendersim.mender_api.management import MenderApiError
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

GROUPS = [
    {"profile": "automotive", "count": 110},  # success rate 0.8
    {"profile": "smart-building", "count": 50},  # 0.85
    {"profile": "industrial", "count": 40},  # 0.8
]
FLEET = sum(g["count"] for g in GROUPS)
EXPECTED_SUCCESS = (110 * 0.8 + 50 * 0.85 + 40 * 0.8) / FLEET
STEPS = [
    ("POST", "auth"),
    ("PUT", "inventory"),
    ("POST", "deployments/next"),
    ("GET", "download"),
    ("PUT", "status:downloading"),
    ("PUT", "status:installing"),
    ("PUT", "status:rebooting"),
    ("PUT", "status:success"),
    ("PUT", "status:failure"),
    ("PUT", "deployment log"),
]


def _run_distributed(tmp, db, server, *, name, seconds, extra=()):
    port = str(_free_port())
    common = ["--mendersim-time-scale", TIME_SCALE, "--mendersim-db", str(db)]
    master = locust(
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--headless", "--expect-workers", "2", "-u", str(FLEET), "-r", "200",
        "-t", f"{seconds}s", "--host", server.url, "--csv", str(tmp / name),
        "--mendersim-mgmt-token", server.mgmt_token, "--mendersim-run-dir", str(tmp / name),
        *common, *extra,
        log=tmp / f"{name}-master.log",
    )  # fmt: skip
    workers = [
        locust("--worker", "--master-port", port, log=tmp / f"{name}-worker{i}.log")
        for i in range(2)
    ]
    try:
        code = master.wait(timeout=seconds + 90)
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        for process in (master, *workers):
            if process.poll() is None:
                process.kill()
    return code, (tmp / f"{name}-master.log").read_text(errors="replace")


def _free_port() -> int:
    from mendersim.server.process import free_port

    return free_port()


def test_distributed_rollout_end_to_end(tmp_path):
    db = seed(tmp_path, GROUPS)
    with running_server("--acceptance", "auto") as server:
        mgmt = server.management()
        code, log = _run_distributed(
            tmp_path, db, server, name="first", seconds=40,
            extra=["--mendersim-scenario", "rollout", "--mendersim-rollout-share", "0.5",
                   "--mendersim-rollout-artifact-size", "32768", "--mendersim-rollout-delay", "30"],
        )  # fmt: skip
        assert code == 0, log[-3000:]

        # Each device simulated exactly once: two disjoint leases covering the fleet.
        leased = dict(re.findall(r"worker (\S+): \d+ more devices, (\d+) leased", log))
        assert len(leased) == 2 and sum(int(n) for n in leased.values()) == FLEET
        rows = stats_rows(tmp_path / "first")
        assert only_requests(rows)
        measured = device_rows(tmp_path / "first")  # every worker's, merged on the master
        assert int(measured[("DEVICE", "time to accepted")]["Request Count"]) == FLEET
        assert mgmt.count_devices() == FLEET
        assert mgmt.count_devices("accepted") == FLEET

        # Per-step statistics, named by step.
        for step in STEPS:
            assert step in rows, f"no statistics entry {step}"
        assert int(measured[("HARNESS", "rollout duration")]["Request Count"]) == 1

        # The rollout reached half the fleet and finished with about the profiles' success rate.
        (deployment,) = mgmt.list_deployments()
        statistics = mgmt.deployment_statistics(deployment["id"])
        finished = statistics["success"] + statistics["failure"]
        assert finished == FLEET // 2
        assert abs(statistics["success"] / finished - EXPECTED_SUCCESS) < 0.15
        logs = []
        for device in mgmt.list_devices(status="accepted", per_page=500):
            try:
                logs.append(mgmt.device_log(deployment["id"], device["id"]))
            except MenderApiError:
                continue
        # The client uploads its log after a failure; an upload lost to the simulated network
        # (the industrial profile's outages) is allowed for one or two devices.
        assert statistics["failure"] - 2 <= len(logs) <= statistics["failure"]
        assert logs and all("error" in text.lower() for text in logs)

        # The store holds the new state: accepted devices, history, installed artifacts.
        with sqlite3.connect(db) as conn:
            by_status = dict(
                conn.execute(
                    "SELECT status, COUNT(*) FROM acceptance WHERE server = ? GROUP BY 1",
                    (ServerKey.of(server.url).url,),
                )
            )
            results = dict(conn.execute("SELECT result, COUNT(*) FROM deployments GROUP BY 1"))
            installed = conn.execute(
                "SELECT COUNT(*) FROM devices WHERE artifact_name = ?",
                (deployment["artifact_name"],),
            ).fetchone()[0]
        assert by_status == {"accepted": FLEET}
        assert results == {"success": statistics["success"], "failure": statistics["failure"]}
        assert installed == statistics["success"]

        # A second run resumes the fleet: same identities, installed artifacts reported.
        code, log = _run_distributed(tmp_path, db, server, name="second", seconds=8)
        assert code == 0, log[-3000:]
        assert mgmt.count_devices() == FLEET
        assert only_requests(stats_rows(tmp_path / "second"))
        measured = device_rows(tmp_path / "second")
        assert int(measured[("DEVICE", "time to accepted")]["Request Count"]) == FLEET
        assert mgmt.deployment_statistics(deployment["id"]) == statistics
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0] == finished


def test_restarted_worker_with_the_same_name_gets_its_devices_back(small_fleet, tmp_path):
    port = str(_free_port())
    master = locust(
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--headless", "--expect-workers", "2", "-u", "40", "-r", "40", "-t", "25s",
        "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
        log=tmp_path / "master.log",
    )  # fmt: skip

    def worker(name: str, log: str):
        return locust(
            "--worker", "--master-port", port, "--mendersim-worker-id", name, log=tmp_path / log
        )

    first, other = worker("w1", "w1.log"), worker("w2", "w2.log")
    processes = [master, first, other]
    try:
        deadline = time.monotonic() + 30
        while len(devices_in(tmp_path / "w1.log")) < 20:
            assert time.monotonic() < deadline, (tmp_path / "master.log").read_text()[-2000:]
            time.sleep(0.2)
        first.kill()  # a crash: no goodbye, no device given back
        first.wait(timeout=10)
        time.sleep(5)  # the master notices the missing heartbeat
        again = worker("w1", "w1-again.log")
        processes.append(again)
        assert master.wait(timeout=90) == 0, (tmp_path / "master.log").read_text()[-3000:]
        again.wait(timeout=30)
        other.wait(timeout=30)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    before, after = devices_in(tmp_path / "w1.log"), devices_in(tmp_path / "w1-again.log")
    assert len(before) == 20 and after == before
    assert not before & devices_in(tmp_path / "w2.log")
