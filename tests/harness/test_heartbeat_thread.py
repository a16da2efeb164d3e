"""A worker's heartbeats reach the master while its hub is held: real master and worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mendersim.harness.worker.heartbeat import HubTicks
from mendersim.server.process import free_port

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).with_name("blocking_locustfile.py")
MISSING = "failed to send heartbeat, setting state to missing"


def _run(tmp: Path, thread: bool) -> str:
    port = str(free_port())
    env = {**os.environ, "MENDERSIM_TEST_HEARTBEAT_THREAD": "1" if thread else "0"}
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    log = tmp / f"master-{thread}.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(
            [*base, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
             "--headless", "--expect-workers", "1", "-u", "1", "-r", "1", "-t", "15s"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    worker = subprocess.Popen(
        [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", port],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        master.wait(timeout=60)
        worker.wait(timeout=30)
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.kill()
    return log.read_text(errors="replace")


def test_a_held_hub_still_sends_heartbeats_from_the_thread(tmp_path):
    text = _run(tmp_path, thread=True)
    assert "Sending spawn jobs" in text, text[-2000:]
    assert MISSING not in text, text[-2000:]


def test_without_the_thread_locust_reports_the_held_worker_missing(tmp_path):
    """The control: the same worker with only Locust's heartbeat greenlet goes missing."""
    assert MISSING in _run(tmp_path, thread=False)


def test_the_thread_stops_vouching_for_a_hub_that_no_longer_ticks():
    ticks = HubTicks()
    assert not ticks.stalled()
    ticks.at -= 31
    assert ticks.stalled()
