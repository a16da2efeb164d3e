"""Seeding throughput: Ed25519 and RSA-2048 devices on every core.

Prints wall time, devices per second, CPU utilisation of the seeding processes, the seed rate
over the first and the last tenth of the devices (watched in the store as it grows: a rate that
falls with the store's size shows as a ratio below 1), and, measured in the same run, the raw
single-process key generation time (key object and both PEMs, as seeds did until keys were
written without curve arithmetic), so that the seed's cost shows as a ratio.
Targets (2 cores): Ed25519 1,000,000 in ≤ 60 s at a steady rate (issue 15); RSA-2048 10,000 in
≤ 300 s (issue 2).

    python bench/bench_seed.py [--ed25519 1000000] [--rsa 10000] [--workers N]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

from mendersim.fleet import keys
from mendersim.fleet.profiles import load_fleet
from mendersim.fleet.seed import seed_store

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write_fleet(folder: Path, key_type: str, count: int) -> Path:
    profile = yaml.safe_load((REPO / "profiles/industries/automotive.yaml").read_text())
    profile = copy.deepcopy(profile)
    profile["key_type"] = key_type
    (folder / "industries").mkdir()
    (folder / "fleets").mkdir()
    (folder / "industries" / "automotive.yaml").write_text(yaml.safe_dump(profile))
    fleet = {
        "server_url": "http://127.0.0.1:8080",
        "seed": 1,
        "groups": [{"profile": "automotive", "count": count}],
    }
    path = folder / "fleets" / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    return path


def raw_keygen_seconds(key_type: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        key = keys.generate(key_type)
        keys.private_pem(key)
        keys.public_pem(key)
    return time.perf_counter() - started


class GrowthWatch:
    """When the store reached each number of devices, read from a second connection (WAL lets
    it read while the seed writes; MAX(rowid) costs a B-tree descent, not a count)."""

    def __init__(self, db: Path, every_s: float = 0.1) -> None:
        self._db = db
        self._every_s = every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> GrowthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        conn = None
        while not self._stop.wait(self._every_s):
            try:
                conn = conn or sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=1)
                (rows,) = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM devices").fetchone()
            except sqlite3.Error:  # not created yet
                continue
            self.samples.append((time.perf_counter(), rows))
        if conn is not None:
            conn.close()

    def rate(self, low: int, high: int) -> float:
        """Devices per second between the moments the store first held `low` and `high`."""
        start_t, start_n = next((t, n) for t, n in self.samples if n >= low)
        end_t, end_n = next((t, n) for t, n in self.samples if n >= high)
        return (end_n - start_n) / (end_t - start_t)


def bench(key_type: str, count: int, workers: int, sample: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = load_fleet(write_fleet(Path(tmp), key_type, count))
        db = Path(tmp) / "fleet.db"
        psutil.cpu_percent(percpu=True)
        cpu_before, started = cpu_seconds(), time.perf_counter()
        with GrowthWatch(db) as watch:
            result = seed_store(fleet, db, workers=workers, progress=False)
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        per_core = psutil.cpu_percent(percpu=True)
        size = db.stat().st_size
    assert result.added == count
    raw = raw_keygen_seconds(key_type, sample) * count / sample
    cores = os.cpu_count() or 1
    print(
        f"{key_type}: {count} devices seeded in {wall:.1f} s ({count / wall:,.0f}/s)"
        f" with {workers} workers; store {size / 1e6:.1f} MB"
    )
    print(
        f"  CPU used by seeding: {cpu:.1f} s = {100 * cpu / (wall * cores):.0f} % of"
        f" {cores} cores; machine per-core busy during the run: {per_core}"
    )
    tenth = count // 10
    if tenth >= 1000:
        first, last = watch.rate(0, tenth), watch.rate(count - tenth, count)
        print(
            f"  rate over devices 0-{tenth:,}: {first:,.0f}/s; over {count - tenth:,}-{count:,}:"
            f" {last:,.0f}/s; last / first = {last / first:.2f}"
        )
    print(
        f"  raw key generation, one process, same run: {raw:.1f} s for {count}"
        f" (extrapolated from {sample}); seed wall / raw keygen = {wall / raw:.2f}"
        f" (ideal with {workers} workers ≈ {1 / workers:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ed25519", type=int, default=1_000_000)
    parser.add_argument("--rsa", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.ed25519:
        bench("ed25519", args.ed25519, args.workers, sample=min(args.ed25519, 20_000))
    if args.rsa:
        bench("rsa2048", args.rsa, args.workers, sample=min(args.rsa, 200))


if __name__ == "__main__":
    main()
