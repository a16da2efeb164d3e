"""Helpers of the harness's integration tests: seeded fleets and Locust processes."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "locustfiles" / "fleet.py"
LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
# Production timing scaled so a 1800 s poll interval takes one second.
TIME_SCALE = str(1 / 1800)


def seed(tmp: Path, groups: list[dict], name: str = "fleet") -> Path:
    fleet = tmp / f"{name}.yaml"
    fleet.write_text(
        yaml.safe_dump(
            {
                "server_url": "http://127.0.0.1:1",  # runs give --host or start a server
                "poll_interval": 1800,
                "seed": 11,
                "groups": groups,
            }
        ),
        encoding="utf-8",
    )
    db = tmp / f"{name}.db"
    subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=tmp,  # the seed log goes next to the store, not into the repository
    )
    return db


def simulator_log(log: Path) -> Path:
    """Where the process whose console goes to `log` writes the simulator's decisions."""
    return log.with_suffix(".simulator.log")


def locust(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    """A Locust process with the fleet locustfile; console to `log`, decisions beside it."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*LOCUST, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "MENDERSIM_LOG_FILE": str(simulator_log(log)), **(env or {})},
        )


def gone_within(processes: list[psutil.Process], bound: float) -> tuple[list, list]:
    """The processes gone (with their `returncode`) and those still alive after `bound`
    seconds (then killed, so that none is left behind)."""
    gone, alive = psutil.wait_procs(processes, timeout=bound)
    for process in alive:
        process.kill()
    return gone, alive


def devices_in(log: Path) -> set[str]:
    """Devices a process simulated, from the engine's log of each first authentication."""
    path = simulator_log(log)
    text = path.read_text(errors="replace") if path.exists() else ""
    return set(re.findall(r"device (\S+): accepted after", text))


def stats_rows(csv_prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{csv_prefix}_stats.csv", encoding="utf-8") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def device_rows(run_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """DEVICE and HARNESS rows, which the harness keeps out of Locust's `*_stats.csv`."""
    with open(run_dir / "device_stats.csv", encoding="utf-8") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def only_requests(rows: dict[tuple[str, str], dict[str, str]]) -> bool:
    """Locust's statistics hold HTTP exchanges only (and their Aggregated row)."""
    return not any(kind in ("DEVICE", "HARNESS") for kind, _ in rows)


def wait_for(fetch, done, seconds: float):
    """Poll `fetch` (an HTTP read; connection errors count as not yet) until `done` holds."""
    deadline, value = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            value = fetch()
        except requests.RequestException:
            value = None
        if value is not None and done(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"not reached in {seconds} s: {value}")
