"""Faults of the services around a run: the Mender server killed and restarted (with and without
its --db), VictoriaMetrics paused and killed, a flood of slow clients. The run carries on; the
store, the server's status endpoint and Locust's counts agree on what happened."""

from __future__ import annotations

import csv
import signal
import socket
import time

import psutil
import pytest
from chaos_kit import (
    compare,
    deploying,
    first_finish_of_repeats,
    locust,
    run_args,
    seed,
    server,
    server_finished,
    store_statuses,
    victoria_metrics,
    wait_exit,
)

pytestmark = pytest.mark.integration

DEVICES = 20


def locust_count(prefix, name: str) -> int:
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        return sum(
            int(row["Request Count"]) for row in csv.DictReader(handle) if row["Name"] == name
        )


def wait_accepted(srv, count: int, timeout: float) -> float:
    started = time.monotonic()
    while srv.status()["devices"].get("accepted", 0) < count:
        assert time.monotonic() - started < timeout, srv.status()
        time.sleep(0.2)
    return time.monotonic() - started


def test_server_killed_and_restarted_with_then_without_its_db(tmp_path):
    db = seed(tmp_path, DEVICES)
    prefix = tmp_path / "run"
    with server(tmp_path) as srv:
        log = tmp_path / "run.log"
        # the run outlasts the wait for the fleet to rejoin after the second restart (+10.5 s)
        run = locust(*run_args(db, DEVICES, 30, srv.url), "--csv", str(prefix), log=log)
        with deploying(srv, tmp_path, DEVICES, [run]):
            time.sleep(4)
            srv.kill()
            first_kill = time.time()
            time.sleep(1.5)
            srv.start()  # with --db: devices, tokens and deployments are back at once
            restarted = time.time()
            assert srv.status()["devices"]["accepted"] == DEVICES
            time.sleep(4)
            srv.kill()
            second_kill = time.time()
            time.sleep(1)
            srv.start(with_db=False)  # empty: every device must authenticate again
            rejoined = wait_accepted(srv, DEVICES, 15)
            code = wait_exit(run, 60, log)
    console = log.read_text()
    assert code in (0, 1), console[-3000:]
    assert "Traceback" not in console
    # what the server with its --db recorded before the second kill is all in the store
    result = compare(srv.db, db, second_kill)
    assert result.before_cutoff >= DEVICES and result.missing_before_cutoff == 0, result
    # A finished deployment is answered only once it is committed, so the server never hands
    # out again what it took. What it could not take is another matter: a device whose report
    # was cut by the kill, or met no server until the restart, gives up on it as the client
    # does and is handed the deployment again. Only those may repeat.
    repeats = first_finish_of_repeats(db)
    assert all(first_kill - 1.0 < t <= restarted for t in repeats), (first_kill, restarted, repeats)
    assert locust_count(prefix, "auth") >= 2 * DEVICES  # once at start, again after the wipe
    print(
        f"server kills at +0 s and +{second_kill - first_kill:.1f} s: {result}; "
        f"{len(repeats)} repeated after the restart with --db; "
        f"fleet accepted again {rejoined:.1f} s after the restart without --db"
    )


def _victoria_metrics_process() -> psutil.Process:
    (process,) = [p for p in psutil.Process().children() if "victoria" in p.name()]
    return process


def test_victoria_metrics_paused_then_killed(tmp_path):
    db = seed(tmp_path, DEVICES)
    prefix = tmp_path / "run"
    with victoria_metrics(tmp_path) as url, server(tmp_path) as srv:
        tsdb = _victoria_metrics_process()
        log = tmp_path / "run.log"
        influx = ["--influx-url", url, "--influx-interval", "1", "--influx-run-id", "chaos"]
        run = locust(*run_args(db, DEVICES, 12, srv.url), "--csv", str(prefix), *influx, log=log)
        try:
            wait_accepted(srv, DEVICES, 30)
            tsdb.send_signal(signal.SIGSTOP)
            time.sleep(4)
            tsdb.send_signal(signal.SIGCONT)
            time.sleep(2)
            tsdb.send_signal(signal.SIGKILL)
            started = time.monotonic()
            code = wait_exit(run, 60, log)
            stopping = time.monotonic() - started
        finally:
            if tsdb.is_running():
                tsdb.send_signal(signal.SIGCONT)
            if run.poll() is None:
                run.kill()
        status = srv.status()
    console = log.read_text()
    assert code in (0, 1), console[-3000:]
    assert "Traceback" not in console
    assert stopping < 30  # an unreachable time-series server never holds the run
    # the fleet's figures are whole: server, Locust and store agree
    assert status["devices"]["accepted"] == DEVICES
    assert locust_count(prefix, "auth") >= DEVICES
    assert store_statuses(db) == {"accepted": DEVICES}


def _slow_sockets(url: str, count: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for i in range(count):
        sock = socket.create_connection((host, int(port)))
        if i % 2:
            sock.sendall(b"GET /_mendersim/status HTTP/1.1\r\nHost: x\r\n")  # headers never end
        else:
            sock.sendall(
                b"POST /api/devices/v1/authentication/auth_requests HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 10000\r\nX-MEN-Signature: s\r\n\r\n{"  # body never ends
            )
        sockets.append(sock)
    return sockets


def test_slow_client_flood_during_a_fleet_run(tmp_path):
    db = seed(tmp_path, DEVICES)
    with server(tmp_path, extra=("--client-timeout", "2s")) as srv:
        log = tmp_path / "run.log"
        run = locust(*run_args(db, DEVICES, 14, srv.url), log=log)
        sockets: list[socket.socket] = []
        with deploying(srv, tmp_path, DEVICES, [run]):
            flood_at = time.time()
            sockets = _slow_sockets(srv.url, 200)
            time.sleep(4)
            closed = 0
            for sock in sockets:
                sock.settimeout(0.5)
                try:
                    answer = sock.recv(4096)
                except TimeoutError:
                    continue
                closed += answer == b"" or answer.startswith(b"HTTP/1.1 408")
            rss = psutil.Process(srv.process.pid).memory_info().rss
            for sock in sockets:
                sock.close()
            code = wait_exit(run, 60, log)
    console = log.read_text()
    assert code in (0, 1), console[-3000:]
    assert closed == len(sockets)  # every slow client was cut off after --client-timeout
    assert rss < 400 * 1024 * 1024
    result = compare(srv.db, db, None)
    finished_during = [t for t in server_finished(srv.db).values() if t > flood_at]
    assert finished_during, "deployments went on finishing during the flood"
    assert result.missing_before_cutoff == 0 and result.repeated == 0, result
    print(f"slow-client flood: {closed} cut off, server RSS {rss >> 20} MiB; {result}")
