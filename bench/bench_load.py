"""Loading a fleet for a run: 100,000 devices out of the seed store (target ≤ 3 s).

Seeds a 100,000-device Ed25519 store first unless --db names an existing one (key type does not
matter to loading: keys stay PEM bytes). Prints the time of `load_devices()` and, in the same
run, of the bare SELECT it wraps, so the cost of building records shows as a ratio, and of a
load with every device's status kept for one server (the statuses join), against the same load
with none kept.

    python bench/bench_load.py [--count 100000] [--db existing.db]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from bench_seed import write_fleet

from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeviceStateUpdate
from mendersim.fleet.profiles import load_fleet
from mendersim.fleet.seed import seed_store
from mendersim.fleet.store import SeedStore


def best_of(runs: int, action) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        value = action()
        best = min(best, time.perf_counter() - started)
    return best, value


def measure(db: Path) -> None:
    def load():
        with SeedStore.open(db) as store:
            return store.load_devices()

    def ids():
        with SeedStore.open(db) as store:
            return store.device_ids()

    def bare_select():
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT * FROM devices ORDER BY group_index, seq").fetchall()
        conn.close()
        return rows

    load_s, records = best_of(3, load)
    ids_s, _ = best_of(3, ids)
    select_s, _ = best_of(3, bare_select)
    count = len(records)
    print(f"load_devices(): {count} devices in {load_s:.2f} s ({count / load_s:,.0f}/s; best of 3)")
    print(
        f"device_ids(): {ids_s:.3f} s; bare SELECT of the same rows: {select_s:.2f} s;"
        f" load / bare SELECT = {load_s / select_s:.2f}"
    )
    started = time.perf_counter()
    for record in records[:1000]:
        record.private_key()
    each_ms = (time.perf_counter() - started) * 1000 / 1000
    print(f"private_key() (RSA validation skipped): {each_ms:.3f} ms each over 1000 devices")
    measure_statuses(db, load_s)


def measure_statuses(db: Path, load_s: float) -> None:
    """A run's load reads each device's status for its server: with a status for every one."""
    server = ServerKey.of("https://mender.example.com")
    with SeedStore.open(db) as store:
        states = [
            DeviceStateUpdate(r.device_id, "accepted", r.artifact_name, "a", {}, [], server)
            for r in store.load_devices()
        ]
        store.save_states(states)

    def load_for_server():
        with SeedStore.open(db) as store:
            return store.load_devices(server=server)

    keyed_s, records = best_of(3, load_for_server)
    assert all(record.status == "accepted" for record in records)
    print(
        f"load_devices(server=...) with {len(records)} statuses kept: {keyed_s:.2f} s;"
        f" / load without statuses = {keyed_s / load_s:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.db:
        measure(args.db)
        return
    with tempfile.TemporaryDirectory() as tmp:
        fleet = load_fleet(write_fleet(Path(tmp), "ed25519", args.count))
        seed_store(fleet, Path(tmp) / "fleet.db", progress=False)
        measure(Path(tmp) / "fleet.db")


if __name__ == "__main__":
    main()
