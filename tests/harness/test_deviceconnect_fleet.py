"""A Locust fleet holding deviceconnect websockets against the embedded server: all of them
open, a SIGKILLed and restarted server, every device back, per-step statistics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from harness_helpers import locust, stats_rows

from mendersim.errors import MendersimError
from mendersim.server.commands import TOKEN_ENV
from mendersim.server.lifeline import PARENT_ENV
from mendersim.server.process import ServerHandle, running_server

pytestmark = pytest.mark.integration

DEVICES = 40
WS_STEPS = {"deviceconnect connect", "deviceconnect ping", "deviceconnect drop"}


def _restart(handle: ServerHandle, db: Path, log: Path) -> subprocess.Popen:
    """The same server again, on its port and over its state; retried while the port is
    briefly held by another connection of this machine."""
    port = handle.url.rsplit(":", 1)[1]
    command = [
        sys.executable, "-m", "mendersim.cli", "serve", "--port", port,
        "--db", str(db), "--db-flush-interval", "0.2s",
    ]  # fmt: skip
    env = {**os.environ, TOKEN_ENV: handle.mgmt_token, PARENT_ENV: str(os.getpid())}
    for _ in range(20):
        with open(log, "ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            process.wait(1.5)  # still running: it listens
        except subprocess.TimeoutExpired:
            return process
        time.sleep(0.5)
    raise AssertionError(log.read_text()[-2000:])


def _connected(handle: ServerHandle) -> int | None:
    try:
        return handle.management().mendersim_status()["deviceconnect"]["connected"]
    except (requests.RequestException, MendersimError):
        return None


def _wait_connected(handle: ServerHandle, run: subprocess.Popen, log: Path, seconds: float):
    deadline = time.monotonic() + seconds
    while _connected(handle) != DEVICES:
        assert run.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"connected: {_connected(handle)}"
        time.sleep(0.2)


def test_a_fleet_keeps_its_websockets_and_gets_them_back_after_a_server_restart(
    small_fleet, tmp_path
):
    db = tmp_path / "server.db"
    with running_server(
        "--db", str(db), "--db-flush-interval", "0.2s", log_file=tmp_path / "server.log"
    ) as handle:
        run = locust(
            "--headless", "-u", str(DEVICES), "-r", str(DEVICES), "-t", "120s",
            "--host", handle.url, "--csv", str(tmp_path / "run"), "--exit-code-on-error", "0",
            "--mendersim-db", str(small_fleet), "--mendersim-time-scale", "0.05",
            "--mendersim-scenario", "ramp", "--mendersim-ramp-window", "2",
            "--mendersim-traffic", "deviceconnect=on", "--mendersim-deviceconnect-ping", "1",
            log=tmp_path / "run.log",
        )  # fmt: skip
        restarted = None
        try:
            _wait_connected(handle, run, tmp_path / "run.log", 60)
            time.sleep(2)  # a few pings on every link
            handle.process.send_signal(signal.SIGKILL)
            handle.process.wait(10)
            time.sleep(1)  # every link is down; attempts are refused meanwhile
            restarted = _restart(handle, db, tmp_path / "server.log")
            _wait_connected(handle, run, tmp_path / "run.log", 60)
            time.sleep(3)  # pings on the new links; Locust writes its CSVs every second
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()[-3000:]
        finally:
            if run.poll() is None:
                run.kill()
            if restarted is not None:
                restarted.send_signal(signal.SIGTERM)
                restarted.wait(30)
    rows = stats_rows(tmp_path / "run")
    names = {name for kind, name in rows if kind == "WS"}
    assert names == WS_STEPS  # per step, never per device
    connects, pings, drops = (
        rows[("WS", f"deviceconnect {n}")] for n in ("connect", "ping", "drop")
    )
    assert int(drops["Request Count"]) == int(drops["Failure Count"]) >= DEVICES
    assert int(pings["Request Count"]) >= 2 * DEVICES and int(pings["Failure Count"]) == 0
    # every device connected twice; refused attempts while the server was down back off
    successes = int(connects["Request Count"]) - int(connects["Failure Count"])
    assert successes >= 2 * DEVICES
    assert int(connects["Failure Count"]) < 30 * DEVICES
