"""SIGKILL of a worker and of the master while deployments keep finishing: every deployment that
finished at least 2 s before the kill is in the store, none twice, and a restart carries on."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest
from chaos_kit import (
    compare,
    deploying,
    locust,
    master,
    run_args,
    seed,
    server,
    simulator_log,
    wait_exit,
)

pytestmark = pytest.mark.integration

DEVICES = 30


def test_worker_sigkill_and_restart_with_the_same_worker_id(tmp_path):
    """Two workers, as the shipped manifests run them: Locust stops a run whose last worker goes
    missing (DECISIONS.md), so a lost worker leaves the other running. The restarted worker
    takes its name back once the master has given up on the dead process, and with it the
    devices it had."""
    db = seed(tmp_path, DEVICES)
    master_log = tmp_path / "master.log"
    with server(tmp_path) as srv:
        run, port = master(db, DEVICES, 120, srv.url, master_log, workers=2)
        w1_args = ("--worker", "--master-port", port, "--mendersim-worker-id", "w1")
        w1 = locust(*w1_args, log=tmp_path / "worker.log")
        w2 = locust("--worker", "--master-port", port, "--mendersim-worker-id", "w2",
                    log=tmp_path / "w2.log")  # fmt: skip
        processes = [run, w1, w2]
        with deploying(srv, tmp_path, DEVICES, processes):
            time.sleep(6)
            killed_at = time.time()
            w1.send_signal(signal.SIGKILL)
            w1.wait(10)
            time.sleep(1.5)  # the master writes within a second of receiving
            at_kill = compare(srv.db, db, killed_at)
            wait_for_line(master_log, "failed to send heartbeat, setting state to missing", 30)
            leases_before = master_log.read_text().count("worker w1: ")
            again = locust(*w1_args, log=tmp_path / "worker2.log")
            processes.append(again)
            deadline = time.monotonic() + 60  # a busy machine starts the new worker slowly
            while master_log.read_text().count("worker w1: ") == leases_before:
                assert time.monotonic() < deadline, "the restarted worker was given no devices"
                time.sleep(0.5)
            restarted_at = compare(srv.db, db, None).server_finished
            while compare(srv.db, db, None).server_finished < restarted_at + DEVICES:
                assert time.monotonic() < deadline, "the run finished nothing after the restart"
                time.sleep(0.5)
            # the restarted worker's own devices took part
            while "deployment" not in simulated(tmp_path / "worker2.log"):
                assert time.monotonic() < deadline, "the restarted worker's devices did nothing"
                time.sleep(0.5)
            run.send_signal(signal.SIGTERM)  # a clean stop: the run's final state is collected
            code = wait_exit(run, 60, master_log)
            wait_exit(again, 30, tmp_path / "worker2.log")
            wait_exit(w2, 30, tmp_path / "w2.log")
        srv.stop()
        final = compare(srv.db, db, None)
    console = master_log.read_text()
    leases = re.findall(r"worker w1: (\d+) more devices, (\d+) leased", console)
    assert len(leases) > leases_before, console[-3000:]  # the restarted worker asked for devices
    first, back = leases[0], leases[leases_before]
    assert back == (first[0], first[0]), leases  # ... and got exactly the ones it had
    assert "in use by another worker" not in console
    assert at_kill.before_cutoff >= DEVICES, at_kill  # deployments did finish before the kill
    assert at_kill.missing_before_cutoff == 0, at_kill
    assert final.repeated == 0, final
    assert final.server_finished > at_kill.server_finished, (at_kill, final)
    assert final.missing_before_cutoff <= at_kill.lost_in_window, (at_kill, final)
    assert code in (0, 1), console[-3000:]
    print(f"worker SIGKILL: {at_kill}; after the run: {final}")


def simulated(log) -> str:
    """What the process whose console is `log` wrote to its simulator log."""
    path = simulator_log(log)
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for_line(log, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{log.name} never said {text!r}"
        time.sleep(0.2)


def test_master_sigkill_then_a_new_run_neither_repeats_nor_loses(tmp_path):
    db = seed(tmp_path, DEVICES)
    with server(tmp_path) as srv:
        run, port = master(db, DEVICES, 60, srv.url, tmp_path / "master.log")
        worker = locust("--worker", "--master-port", port, log=tmp_path / "worker.log")
        processes = [run, worker]
        with deploying(srv, tmp_path, DEVICES, processes, count=12):
            time.sleep(6)
            killed_at = time.time()
            run.send_signal(signal.SIGKILL)
            run.wait(10)
            worker.send_signal(signal.SIGKILL)  # (a worker without its master: issue 15)
            worker.wait(10)
            at_kill = compare(srv.db, db, killed_at)
            # A new standalone run on the same store and server picks up where it was.
            rerun = locust(*run_args(db, DEVICES, 8, srv.url), log=tmp_path / "rerun.log")
            processes.append(rerun)
            code = wait_exit(rerun, 60, tmp_path / "rerun.log")
        srv.stop()
        final = compare(srv.db, db, killed_at)
    assert at_kill.before_cutoff >= DEVICES, at_kill
    assert at_kill.missing_before_cutoff == 0, at_kill
    assert final.repeated == 0, final
    assert final.missing_before_cutoff == 0, final
    assert code in (0, 1), (tmp_path / "rerun.log").read_text()[-3000:]
    print(f"master SIGKILL: {at_kill}; after a new run: {final}")


def test_embedded_server_dies_with_a_sigkilled_master(tmp_path):
    db = seed(tmp_path, 5)
    run = locust(*run_args(db, 5, 60, None), log=tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 30
        servers: list[psutil.Process] = []
        while not servers:
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            servers = [
                p for p in psutil.Process(run.pid).children() if "serve" in " ".join(p.cmdline())
            ]
            time.sleep(0.2)
        (embedded,) = servers
        assert os.getpgid(embedded.pid) == os.getpgid(run.pid)  # in the run's process group
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        embedded.wait(10)  # psutil.TimeoutExpired here would mean an orphan
    finally:
        if run.poll() is None:
            run.kill()
