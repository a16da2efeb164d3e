"""Workers end with their master, however it ends: the master SIGKILLed, real processes."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from harness_helpers import TIME_SCALE, devices_in, gone_within, locust

from mendersim.server.process import free_port

pytestmark = pytest.mark.integration

# Locust's own worker gives up on a silent master after 60 s; the harness's bound is lower.
WORKER_EXIT_BOUND_S = 45
CHILD_EXIT_BOUND_S = 30


def _run_args(db, *extra: str) -> list[str]:
    return [
        "--headless", "-u", "20", "-r", "20", "-t", "300s",
        "--mendersim-db", str(db), "--mendersim-time-scale", TIME_SCALE, *extra,
    ]  # fmt: skip


def _wait_for_devices(log, process, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not devices_in(log):
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, f"no device accepted within {within:.0f} s"
        time.sleep(0.2)


def test_a_worker_exits_when_its_master_is_sigkilled(small_fleet, tmp_path):
    port = str(free_port())
    master = locust(
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--expect-workers", "1", *_run_args(small_fleet), log=tmp_path / "master.log",
    )  # fmt: skip
    worker = locust("--worker", "--master-port", port, log=tmp_path / "worker.log")
    try:
        _wait_for_devices(tmp_path / "worker.log", worker)
        master.kill()
        master.wait(timeout=10)
        started = time.monotonic()
        gone, alive = gone_within([psutil.Process(worker.pid)], WORKER_EXIT_BOUND_S)
        took = time.monotonic() - started
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.kill()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert not alive, f"worker still running {WORKER_EXIT_BOUND_S} s after its master died"
    assert "the master is gone, this worker quits" in log, (took, log[-2000:])
    assert gone[0].returncode == 1  # its run did not end well


def test_processes_children_exit_when_the_master_is_sigkilled(small_fleet, tmp_path):
    port = str(free_port())
    log = tmp_path / "master.log"
    master = locust(
        "--processes", "2", "--master-bind-port", port, "--master-port", port,
        *_run_args(small_fleet), log=log,
    )  # fmt: skip
    try:
        _wait_for_devices(log, master)
        children = psutil.Process(master.pid).children(recursive=True)  # workers, server
        workers = [c for c in children if c.cmdline()[1:3] == ["-m", "locust"]]
        assert len(workers) == 2, [c.cmdline() for c in children]
        os.kill(master.pid, signal.SIGKILL)
        master.wait(timeout=10)
        _, alive = gone_within(children, CHILD_EXIT_BOUND_S)
    finally:
        if master.poll() is None:
            master.kill()
    assert not alive, [p.pid for p in alive]
