"""SIGTERM in the middle of a distributed ramp ends the run at once: the master's dispatch
sends no spawn after its stop, the workers hand in and quit, no device starts after the
hand-in, the report is written once, and the store holds what the server saw.

The signal comes while the ramp still has most of its devices to start (a slow spawn rate,
sent once the first devices are known to the server), so the test does not depend on how fast
a loaded machine ramps."""

from __future__ import annotations

import re
import signal
import sqlite3
import time

import psutil
import pytest
from harness_helpers import TIME_SCALE, gone_within, locust, seed

from mendersim.fleet.acceptance import ServerKey
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

DEVICES = 4000
RATE = 40  # a ramp of 100 s: the signal comes well inside it
STARTED = 60  # devices the server knows before the signal
# Locust's master otherwise waits out its 60 s stop timeout while the ramp keeps spawning.
EXIT_BOUND_S = 30


def _hand_ins(log) -> int:
    return len(re.findall(r"hand-in of \d+ devices", log.read_text(errors="replace")))


def test_sigterm_mid_ramp_ends_a_distributed_run_once_with_the_store_written(tmp_path):
    db = seed(tmp_path, [{"profile": "automotive", "count": DEVICES}])
    log = tmp_path / "run.log"
    with running_server("--acceptance", "auto") as server:
        mgmt = server.management()
        run = locust(
            "--processes", "2", "--headless", "-u", str(DEVICES), "-r", str(RATE),
            "-t", "300s", "--host", server.url,
            "--mendersim-db", str(db), "--mendersim-time-scale", TIME_SCALE,
            log=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while mgmt.count_devices() < STARTED:
                assert run.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.2)
            processes = [psutil.Process(run.pid), *psutil.Process(run.pid).children(True)]
            signalled = time.monotonic()
            run.send_signal(signal.SIGTERM)
            while _hand_ins(log) < 2 and run.poll() is None:
                time.sleep(0.05)
            known_at_hand_in = mgmt.count_devices()
            _, alive = gone_within(processes, EXIT_BOUND_S)
            took = time.monotonic() - signalled
        finally:
            if run.poll() is None:
                run.kill()
        known_after, accepted = mgmt.count_devices(), mgmt.count_devices("accepted")
    text = log.read_text(errors="replace")
    assert not alive, f"still running {EXIT_BOUND_S} s after SIGTERM: {alive}"
    assert run.returncode == 0, text[-3000:]
    assert "All users spawned" not in text, "the signal came after the ramp: " + text[-3000:]
    assert text.count("stopped mid-ramp") == 1, text[-3000:]
    assert "Timeout waiting for all workers to stop" not in text, (took, text[-3000:])
    assert text.count("users left to the exit") == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "didn't have proper args" not in text, text[-3000:]
    # Locust's shutdown may run twice after a signal; the report is written once
    assert text.count("run report: ") == 1, text[-3000:]
    # no device started once the workers had handed in: one would reach the server with
    # nothing left to take its state. What reached it since was already on the wire then
    # (the hand-in waits for those requests a bounded time only).
    on_the_wire = sum(int(n) for n in re.findall(r"(\d+) requests still on the wire", text))
    assert known_after - known_at_hand_in <= on_the_wire, (known_at_hand_in, known_after, text)
    assert known_after < DEVICES / 2, "the ramp went on after the stop"
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute(
            "SELECT COUNT(*) FROM acceptance WHERE server = ? AND status = 'accepted'",
            (ServerKey.of(server.url).url,),
        ).fetchone()
    print(
        f"SIGTERM mid-ramp at {known_at_hand_in} known devices: every process gone in "
        f"{took:.1f} s; accepted by the server {accepted}, in the store {stored}"
    )
    assert accepted * 0.99 <= stored <= accepted, (stored, accepted)
