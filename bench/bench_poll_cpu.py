"""Client CPU per 1,000 polls: a fleet polling every 30 s against a bare client loop, same run.

The embedded server is pinned to one core, each client process to the other. Phases, one after
the other in this run, each measured over the same window once it is steady:
1. bare, fresh: one gevent loop POSTing the v2 `deployments/next` with one device's token at the
   fleet's poll rate (devices / 30 s), a new connection per exchange (geventhttpclient, nothing
   else: the floor of a Python client);
2. bare, kept: the same loop on one kept connection;
3. devices, fresh (the default policy): the seeded fleet (poll interval 30 s, production timing)
   in one standalone Locust process;
4. devices, keepalive (idle timeout 90 s, so every device reuses its connection).
For each: client CPU seconds per 1,000 polls (psutil, user + system, over the window) and the
server's. Target: devices <= 0.37 s per 1,000 polls, the figure of Mender's Go stress client.

    python bench/bench_poll_cpu.py --devices 10000 --window 60
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from bench_throughput import device_token
from fleet_bench import LOAD_CPU, SERVER_CPU, locust, pin, seeded_fleet, wait

from mendersim.device.engine import NEXT_V2
from mendersim.server.process import free_port, running_server

POLL_S = 30
TARGET = 0.37  # client CPU s per 1,000 polls, Mender's Go stress client (issue 15)

BARE_LOOP = """
import os, sys, time
import gevent
from geventhttpclient import HTTPClient

host, port, rate, seconds, kept = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \\
    float(sys.argv[4]), sys.argv[5] == "kept"
headers = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"],
           "Content-Type": "application/json"}
if not kept:
    headers["Connection"] = "close"
body = os.environ["BENCH_BODY"].encode()
client = HTTPClient(host, port, concurrency=1 if kept else 65536)

def poll():
    answer = client.request("POST", os.environ["BENCH_PATH"], body=body, headers=headers)
    answer.read()
    answer.release()

start = time.monotonic()
count = 0
while time.monotonic() - start < seconds:
    gevent.spawn(poll)
    count += 1
    gevent.sleep(max(0.0, start + count / rate - time.monotonic()))
gevent.sleep(1)
print(count)
"""


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def bare(server, rate: float, seconds: float, kept: bool, tmp: Path) -> tuple[float, int]:
    """CPU seconds and requests of the bare loop (its whole life: it does nothing else)."""
    script, log = tmp / "bare_loop.py", tmp / "bare.log"
    script.write_text(BARE_LOOP)
    host, port = server.url.removeprefix("http://").split(":")
    command = [sys.executable, str(script), host, port, str(rate), str(seconds)]
    with open(log, "wb") as out:
        process = subprocess.Popen([*command, "kept" if kept else "fresh"], stdout=out)
    pin(process.pid, LOAD_CPU)
    used = wait(process, log, seconds + 60)
    return used, int(log.read_text().strip())


def polls(port: int) -> int:
    report = requests.get(f"http://127.0.0.1:{port}/stats/requests", timeout=30).json()
    return sum(
        row["num_requests"]
        for row in report["stats"]
        if (row["method"], row["name"]) == ("POST", "deployments/next")
    )


def wait_steady(run: subprocess.Popen, port: int, args, log: Path) -> None:
    """Until every device is accepted (each then only polls), and one poll interval more."""
    deadline = time.monotonic() + args.max_warmup
    accepted = 0
    while accepted < args.devices:
        if run.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{log}: {accepted} devices accepted\n{log.read_text()[-2000:]}")
        time.sleep(2)
        with contextlib.suppress(requests.RequestException):
            fleet = requests.get(f"http://127.0.0.1:{port}/mendersim/fleet", timeout=30).json()
            accepted = fleet["devices_by_status"].get("accepted", 0)
    time.sleep(POLL_S)


def devices(server, db: Path, args, connection: str, tmp: Path) -> dict[str, float]:
    """The fleet in one Locust process: CPU and polls over the window, once every device polls."""
    port = free_port()
    log = tmp / f"devices-{connection}.log"
    run = locust(
        [
            "--autostart",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "-u",
            str(args.devices),
            "-r",
            str(args.spawn_rate),
            "--host",
            server.url,
            "--mendersim-db",
            str(db),
            "--mendersim-connection",
            connection,
        ],
        log,
    )
    try:
        client, server_process = psutil.Process(run.pid), psutil.Process(server.process.pid)
        wait_steady(run, port, args, log)
        first = polls(port), cpu(client), cpu(server_process)
        time.sleep(args.window)
        last = polls(port), cpu(client), cpu(server_process)
    finally:
        run.terminate()
        run.wait(timeout=120)
    count = last[0] - first[0]
    return {"polls": count, "client": last[1] - first[1], "server": last[2] - first[2]}


def per_1000(seconds: float, count: int) -> float:
    return 1000 * seconds / count if count else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60, help="seconds measured per phase")
    parser.add_argument("--spawn-rate", type=float, default=1000)
    parser.add_argument("--max-warmup", type=float, default=300, help="bound of each start-up")
    args = parser.parse_args()
    rate = args.devices / POLL_S
    source = seeded_fleet(args.devices, poll_interval=POLL_S)
    with tempfile.TemporaryDirectory(prefix="mendersim-pollcpu-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "fleet.db"
        results: dict[str, dict[str, float]] = {}
        # Idle connections kept 180 s, as Traefik (Mender's gateway) keeps them by default,
        # not the embedded server's 30 s, which would race 30 s polls under keepalive.
        with running_server("--acceptance", "auto", "--client-timeout", "180s") as server:
            pin(server.process.pid, SERVER_CPU)
            token, body = device_token(server.url, source)
            os.environ.update(BENCH_TOKEN=token, BENCH_BODY=body, BENCH_PATH=NEXT_V2)
            for kept in (False, True):
                used, count = bare(server, rate, args.window, kept, tmp)
                results["bare, " + ("kept" if kept else "fresh")] = {
                    "polls": count,
                    "client": used,
                    "server": float("nan"),
                }
            for connection in ("fresh", "keepalive"):
                shutil.copyfile(source, db)
                results[f"devices, {connection}"] = devices(server, db, args, connection, tmp)
    print(
        f"{args.devices} devices polling every {POLL_S} s ({rate:.0f} polls/s), "
        f"{args.window:.0f} s measured per phase, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"{'phase':<20} {'polls':>7} {'client s/1000':>14} {'server s/1000':>14}")
    for name, row in results.items():
        print(
            f"{name:<20} {row['polls']:>7.0f} {per_1000(row['client'], row['polls']):>14.3f} "
            f"{per_1000(row['server'], row['polls']):>14.3f}"
        )
    for policy, floor in (("fresh", "bare, fresh"), ("keepalive", "bare, kept")):
        row, base = results[f"devices, {policy}"], results[floor]
        figure = per_1000(row["client"], row["polls"])
        ratio = figure / per_1000(base["client"], base["polls"])
        verdict = "PASS" if figure <= TARGET else "FAIL"
        print(
            f"devices, {policy}: {figure:.3f} s per 1,000 polls = {ratio:.2f} x {floor} "
            f"(target <= {TARGET} s) {verdict}"
        )


if __name__ == "__main__":
    main()
