"""What the harness benchmarks share: a cached seeded fleet, pinned processes, CSV figures.

The fleet uses the automotive profile without a network model, so what is measured is the
harness and the server, not simulated radio links.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MENDERSIM_BENCH_CACHE", "/tmp/mendersim-bench"))
LOCUSTFILE = REPO / "locustfiles" / "fleet.py"
SERVER_CPU, LOAD_CPU = 1, 0  # the embedded server on one core, the load generator on the other


def seeded_fleet(count: int, poll_interval: int = 1800) -> Path:
    """A store of `count` automotive devices with no network shaping; seeded once, then reused."""
    CACHE.mkdir(parents=True, exist_ok=True)
    name = f"fleet-{count}" if poll_interval == 1800 else f"fleet-{count}-poll{poll_interval}"
    db = CACHE / f"{name}.db"
    if db.exists():
        return db
    profile = yaml.safe_load((REPO / "profiles/industries/automotive.yaml").read_text())
    profile["network"] = {"profile": "none"}
    (CACHE / "network").mkdir(exist_ok=True)
    (CACHE / "network" / "none.yaml").write_text((REPO / "profiles/network/none.yaml").read_text())
    (CACHE / "bench-automotive.yaml").write_text(yaml.safe_dump(profile))
    fleet = CACHE / f"{name}.yaml"
    fleet.write_text(
        yaml.safe_dump(
            {
                "server_url": "http://127.0.0.1:1",
                "poll_interval": poll_interval,
                "seed": 1,
                "groups": [{"profile": "bench-automotive.yaml", "count": count}],
            }
        )
    )
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)],
        check=True,
        cwd=CACHE,  # the seed log goes next to the store
    )
    print(f"seeded {count} devices in {time.monotonic() - started:.0f} s", flush=True)
    return db


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > cpu:
        os.sched_setaffinity(pid, {cpu})


def headless(users: int, seconds: int, host: str) -> list[str]:
    """Locust's options for a bounded headless run of `users` spawned at once."""
    u = str(users)
    return ["--headless", "-u", u, "-r", u, "-t", f"{seconds}s", "--host", host, "--only-summary"]


def locust(
    args: list[str], log: Path, *, locustfile: Path = LOCUSTFILE, pinned: bool = True
) -> subprocess.Popen:
    """A Locust process pinned to the load generator's core (`pinned`), else on any core."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(locustfile), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    if pinned:
        pin(process.pid, LOAD_CPU)
    return process


def wait(process: subprocess.Popen, log: Path, timeout: float) -> float:
    """Wait for a clean exit; returns the CPU seconds the process used (sampled until its end)."""
    watched = psutil.Process(process.pid)
    cpu = 0.0
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{log}: still running after {timeout:.0f} s")
        try:
            times = watched.cpu_times()
            cpu = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.2)
    code = process.returncode
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{log}: exit code {code}\n{tail}")
    return cpu


def stats_row(csv_prefix: Path, request_type: str, name: str) -> dict[str, str]:
    with open(f"{csv_prefix}_stats.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["Type"], row["Name"]) == (request_type, name):
                return row
    raise SystemExit(f"{csv_prefix}_stats.csv: no {request_type} {name} entry")


def http_requests(csv_prefix: Path) -> int:
    """Requests Locust counted over HTTP methods (device events and harness figures apart)."""
    with open(f"{csv_prefix}_stats.csv", encoding="utf-8") as handle:
        return sum(
            int(row["Request Count"])
            for row in csv.DictReader(handle)
            if row["Type"] in ("GET", "POST", "PUT", "PATCH")
        )
