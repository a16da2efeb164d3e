"""Seeding throughput: 100,000 Ed25519 devices and 10,000 RSA-2048 devices on every core.

Prints wall time, devices per second, CPU utilisation of the seeding processes, and, measured
in the same run, the raw single-process key generation time, so that the seed's overhead shows
as a ratio. Targets (issue 2, 2 cores): Ed25519 100,000 in ≤ 20 s; RSA-2048 10,000 in ≤ 300 s.

    python bench/bench_seed.py [--ed25519 100000] [--rsa 10000] [--workers N]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import tempfile
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


def bench(key_type: str, count: int, workers: int, sample: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = load_fleet(write_fleet(Path(tmp), key_type, count))
        psutil.cpu_percent(percpu=True)
        cpu_before, started = cpu_seconds(), time.perf_counter()
        result = seed_store(fleet, Path(tmp) / "fleet.db", workers=workers, progress=False)
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        per_core = psutil.cpu_percent(percpu=True)
        size = (Path(tmp) / "fleet.db").stat().st_size
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
    print(
        f"  raw key generation, one process, same run: {raw:.1f} s for {count}"
        f" (extrapolated from {sample}); seed wall / raw keygen = {wall / raw:.2f}"
        f" (ideal with {workers} workers ≈ {1 / workers:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ed25519", type=int, default=100_000)
    parser.add_argument("--rsa", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.ed25519:
        bench("ed25519", args.ed25519, args.workers, sample=min(args.ed25519, 20_000))
    if args.rsa:
        bench("rsa2048", args.rsa, args.workers, sample=min(args.rsa, 200))


if __name__ == "__main__":
    main()
