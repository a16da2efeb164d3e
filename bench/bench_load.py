"""Loading a fleet for a run: a million devices out of the seed store.

Targets (issue 15, 2 cores): the records of 1,000,000 devices loaded in ≤ 10 s, at most 1 kB
each in memory until a device needs its key. Seeds an Ed25519 store first unless --db names an
existing one. Prints, all in one run:

- `load_devices()` of the whole fleet: time (best of --runs) and bytes per record (tracemalloc,
  a separate pass), beside the bare SELECT of the same rows (their ratio is what building
  records costs);
- the lease path of a distributed run: the master loads records by id in `wire.CHUNK` slices and
  encodes them as Locust messages, a worker decodes them into records (time and the worker's
  bytes per record);
- a device's first use of its key: loading it and deriving the public key it sends;
- a load with every device's status kept for one server (the statuses join), against the same
  load with none kept (this writes the statuses into the store).

    python bench/bench_load.py [--count 1000000] [--db existing.db] [--runs 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_seed import write_fleet
from locust.rpc.protocol import Message  # Locust patches this process for gevent

from mendersim.fleet import keys
from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeviceStateUpdate
from mendersim.fleet.store import SeedStore
from mendersim.harness import wire


def best_of(runs: int, action: Callable[[], Any]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(runs):
        value = None  # the previous result is freed before the next run
        started = time.perf_counter()
        value = action()
        best = min(best, time.perf_counter() - started)
    return best, value


def bytes_each(action: Callable[[], list[Any]]) -> float:
    """Memory the returned objects hold, per object (the list's own pointers included)."""
    tracemalloc.start()
    try:
        values = action()
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return used / len(values)


def measure(db: Path, runs: int) -> None:
    def load() -> list[Any]:
        with SeedStore.open(db) as store:
            return store.load_devices()

    def bare_select() -> list[Any]:
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT * FROM devices ORDER BY group_index, seq").fetchall()
        conn.close()
        return rows

    with SeedStore.open(db) as store:
        ids = store.device_ids()

    def master_side() -> list[bytes]:
        """What the coordinator does for a worker that leases every device."""
        messages = []
        with SeedStore.open(db) as store:
            for start in range(0, len(ids), wire.CHUNK):
                records = store.load_devices(device_ids=ids[start : start + wire.CHUNK])
                data = {"records": [wire.record_to_wire(r) for r in records], "last": False}
                messages.append(Message(wire.SLICE, data, "master").serialize())
        return messages

    load_s, records = best_of(runs, load)
    count = len(records)
    records = None
    select_s, _ = best_of(runs, bare_select)
    load_bytes = bytes_each(load)
    print(
        f"load_devices(): {count:,} devices in {load_s:.2f} s ({count / load_s:,.0f}/s; best of"
        f" {runs}); {load_bytes:.0f} bytes per record"
    )
    ratio = load_s / select_s
    print(f"  bare SELECT of the same rows: {select_s:.2f} s; load / bare = {ratio:.2f}")

    master_s, messages = best_of(1, master_side)

    def worker_side() -> list[Any]:
        return [
            wire.record_from_wire(item)
            for raw in messages
            for item in Message.unserialize(raw).data["records"]
        ]

    worker_s, _ = best_of(1, worker_side)
    worker_bytes = bytes_each(worker_side)
    size = sum(len(m) for m in messages)
    print(
        f"lease path: master loads and encodes {count:,} records in {master_s:.2f} s"
        f" ({len(messages)} messages, {size / count:.0f} bytes per record on the wire);"
        f" a worker decodes them in {worker_s:.2f} s; {worker_bytes:.0f} bytes per record there"
    )
    sample = worker_side()[:: max(1, count // 1000)]
    messages = None
    started = time.perf_counter()
    for record in sample:
        keys.sign(record.private_key(), record.public_key_pem.encode())
    each_ms = (time.perf_counter() - started) * 1000 / len(sample)
    print(
        f"first use of a key (load it, derive the public key, sign): {each_ms:.3f} ms per device"
        f" over {len(sample)}; the key object is dropped after each authentication"
    )
    measure_statuses(db, load_s, runs)


def measure_statuses(db: Path, load_s: float, runs: int) -> None:
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

    keyed_s, records = best_of(runs, load_for_server)
    assert all(record.status == "accepted" for record in records)
    print(
        f"load_devices(server=...) with {len(records)} statuses kept: {keyed_s:.2f} s;"
        f" / load without statuses = {keyed_s / load_s:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.db:
        measure(args.db, args.runs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fleet.db"
        fleet = write_fleet(Path(tmp), "ed25519", args.count)
        # A seed of its own, as users run it: its pool of processes cannot fork a patched one.
        command = [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)]
        subprocess.run([*command, "--quiet"], check=True)
        measure(db, args.runs)


if __name__ == "__main__":
    main()
