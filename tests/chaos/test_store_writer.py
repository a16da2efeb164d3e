"""The store writer on a real full disk: the batch is kept and retried, the message is one line,
the final write falls back to a side file, and the next run applies it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from fullfs import fill, small_tmpfs

from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeploymentRecord, DeviceStateUpdate
from mendersim.fleet.store import SeedStore
from mendersim.harness.coordination.storewriter import StoreWriter, side_file, spare_file

pytestmark = pytest.mark.integration

SERVER = ServerKey.of("https://mender.example.com", "tenant-token")

FLEET = """
server_url: http://127.0.0.1:1
seed: 5
groups:
  - profile: automotive
    count: 30
"""


@pytest.fixture
def store_on_tmpfs(tmp_path):
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text(FLEET)
        db = disk / "fleet.db"
        command = [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)]
        subprocess.run([*command, "--quiet"], check=True, timeout=120, cwd=tmp_path)
        yield db


def updates(store: SeedStore, deployment: str, count: int = 10) -> list[DeviceStateUpdate]:
    return [
        DeviceStateUpdate(
            device_id,
            "accepted",
            f"fw-{deployment}",
            "b",
            {},
            [DeploymentRecord(deployment, f"fw-{deployment}", 10.0, 20.0, "success")],
            SERVER,
        )
        for device_id in store.device_ids()[:count]
    ]


def history(store: SeedStore) -> list[tuple[str, str]]:
    rows = store._conn.execute("SELECT device_id, deployment_id FROM deployments ORDER BY 1, 2")
    return [tuple(row) for row in rows]


def test_full_disk_keeps_the_batch_retries_and_leaves_a_side_file(store_on_tmpfs, caplog):
    caplog.set_level(logging.INFO, logger="mendersim")
    db = store_on_tmpfs
    sleeps: list[float] = []
    store = SeedStore.open(db)
    writer = StoreWriter(store, sleep=sleeps.append)
    writer.start()
    assert spare_file(db).stat().st_size == 1 << 20
    writer.add(updates(store, "d1"))
    assert writer.write()  # room left: committed at once
    filler = fill(db.parent)
    writer.add(updates(store, "d2"))
    assert not writer.write()
    assert writer.behind and writer.pending == 10
    failure = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failure) == 1 and "\n" not in failure[0]
    assert f"store write failed: {db}: database or disk is full" in failure[0]
    assert "10 device states kept in memory" in failure[0]
    assert not writer.write()  # still full: kept again, no update lost or doubled
    assert writer.pending == 10
    filler.unlink()
    assert writer.write() and not writer.behind and writer.pending == 0
    assert len(history(store)) == 20  # d1 and d2 once each

    fill(db.parent)
    writer.add(updates(store, "d3", count=5))
    writer.stop()  # every final attempt fails; the spare makes room for the side file
    assert writer.behind and writer.side_file_written == side_file(db)
    lines = side_file(db).read_text().splitlines()
    assert [json.loads(line)["history"][0]["deployment_id"] for line in lines] == ["d3"] * 5
    assert any("the next run applies them" in r.getMessage() for r in caplog.records)
    store.close()

    (db.parent / "filler").unlink()
    with SeedStore.open(db) as again:
        assert StoreWriter(again).apply_side_file() == 5
        assert not side_file(db).exists()
        assert len(history(again)) == 25
        (first,) = again.load_devices(device_ids=again.device_ids()[:1], server=SERVER)
        # the side file kept whose answer each status was
        assert (first.artifact_name, first.status) == ("fw-d3", "accepted")


def test_a_torn_last_line_of_the_side_file_is_skipped(store_on_tmpfs, caplog):
    db = store_on_tmpfs
    with SeedStore.open(db) as store:
        good = json.dumps(
            {
                "device_id": store.device_ids()[0],
                "status": "accepted",
                "artifact_name": "fw-x",
                "partition": "a",
                "provides": {},
                "history": [],
            }
        )
        side_file(db).write_text(good + "\n" + good[:20])
        assert StoreWriter(store).apply_side_file() == 1
        assert "skipped, not a device state" in caplog.text
