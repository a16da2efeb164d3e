"""A real `mendersim seed` interrupted by SIGTERM and SIGINT, then completed by re-running."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest
from fleet_helpers import REPO, identity_index, variant

from mendersim.fleet import keys
from mendersim.fleet.store import SeedStore

pytestmark = pytest.mark.integration

COUNT = 2000
# RSA-2048 keys make the seed slow enough to interrupt part-way; the rest are Ed25519.
MIXED = variant(
    "automotive",
    "cars",
    key_type=[{"value": "rsa2048", "weight": 1}, {"value": "ed25519", "weight": 7}],
)


def stored(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    except sqlite3.Error:
        return 0


def seed_until(fleet, db, log_file, *, stop_after: int | None, signum: int | None):
    """Run the seed; once the store holds `stop_after` devices, send `signum` to it."""
    command = [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)]
    command += ["--quiet", "--workers", "2", "--log-file", str(log_file)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    workers: list[psutil.Process] = []
    if signum is not None:
        deadline = time.monotonic() + 120
        while stored(db) < stop_after:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "seeding made no progress"
            time.sleep(0.05)
        workers = psutil.Process(process.pid).children(recursive=True)
        assert workers, "key generation runs in worker processes"
        process.send_signal(signum)
    out, err = process.communicate(timeout=180)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "the worker pool was torn down"
    return process.returncode, out, err


def check_consistent(db) -> int:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    with SeedStore.open(db) as store:
        records = store.load_devices()
    for record in records:  # every stored key whole, of its type, signing as the server checks
        private = record.private_key()
        assert keys.key_type_of(private) == record.key_type
        signature = keys.sign(private, record.device_id.encode())
        assert keys.verify(
            keys.load_public(record.public_key_pem), signature, record.device_id.encode()
        )
    assert len({r.id_data_json() for r in records}) == len(records)
    return len(records)


def test_interrupted_seed_keeps_a_consistent_store_and_resumes(write_fleet, tmp_path):
    fleet = write_fleet([("cars", COUNT)], profiles={"cars": MIXED})
    db, log_file = tmp_path / "fleet.db", tmp_path / "sim.log"

    code, _, err = seed_until(fleet, db, log_file, stop_after=200, signum=signal.SIGTERM)
    first = check_consistent(db)
    assert code == 143
    assert err.strip().splitlines() == [
        f"mendersim: error: seeding interrupted by SIGTERM: {first} of {COUNT} devices stored;"
        " run the same command again to complete it"
    ]
    assert 200 <= first < COUNT
    assert identity_index(db) is None

    code, _, err = seed_until(fleet, db, log_file, stop_after=first + 200, signum=signal.SIGINT)
    second = check_consistent(db)
    assert code == 130 and "interrupted by SIGINT" in err and "Traceback" not in err
    assert first + 200 <= second < COUNT

    code, _, err = seed_until(fleet, db, log_file, stop_after=None, signum=None)
    assert code == 0, err
    assert check_consistent(db) == COUNT
    assert "CREATE UNIQUE INDEX" in (identity_index(db) or "")
    with SeedStore.open(db) as store:
        ids = store.device_ids()
        assert ids == [f"cars-{i:06d}" for i in range(COUNT)]
        assert set(store.summary()["by_key_type"]) == {"rsa2048", "ed25519"}
    log = log_file.read_text()
    assert "interrupted by SIGTERM" in log and f"resuming {db}: {second} of {COUNT}" in log
