"""The seed store: creation, 0600 mode, loader API, state write-back, changed configs."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat

import pytest
from fleet_helpers import variant

from mendersim import cli
from mendersim.fleet import keys
from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeploymentRecord, DeviceStateUpdate
from mendersim.fleet.profiles import load_fleet
from mendersim.fleet.seed import SeedRefused, seed_store
from mendersim.fleet.store import SeedStore, StoreError

SERVER = ServerKey.of("https://mender.example.com")
CARS = variant("automotive", "cars")  # Ed25519: fast to seed
METERS = variant("smart-building", "meters", key_type="ecdsa-p256")


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def seeded(write_fleet, tmp_path):
    path = write_fleet([("cars", 40), ("meters", 30)], profiles={"cars": CARS, "meters": METERS})
    db = tmp_path / "fleet.db"
    log_file = tmp_path / "sim.log"
    argv = ["seed", str(path), "--db", str(db), "--quiet", "--log-file", str(log_file)]
    assert cli.main(argv) == 0
    yield db
    logging.getLogger("mendersim").handlers.clear()


def test_store_and_its_wal_files_are_private(seeded):
    assert mode(seeded) == 0o600
    with SeedStore.open(seeded) as store:
        store.save_states([])  # a write: WAL and shared-memory files exist while open
        for suffix in ("-wal", "-shm"):
            assert mode(seeded.with_name(seeded.name + suffix)) == 0o600


def test_loader_returns_every_device_in_a_stable_order(seeded):
    with SeedStore.open(seeded) as store:
        ids = store.device_ids()
        records = store.load_devices()
        assert [r.device_id for r in records] == ids
        assert ids[:2] == ["cars-000000", "cars-000001"] and ids[40] == "meters-000000"
        assert len(ids) == len(set(ids)) == 70
        assert store.device_ids(profiles=["meters"]) == ids[40:]
        sliced = store.load_devices(offset=35, limit=10)
        assert [r.device_id for r in sliced] == ids[35:45]
        chosen = store.load_devices(device_ids=[ids[50], ids[3]])
        assert [r.device_id for r in chosen] == [ids[3], ids[50]]
        assert store.load_devices(profiles=["cars"], limit=1)[0].device_id == "cars-000000"
        record = records[45]
        assert record.profile == "meters" and record.key_type == "ecdsa-p256"
        assert isinstance(record.private_key_pem, bytes) and record.status == "new"
        assert record.partition == "a" and record.provides == {}
        assert record.artifact_name == METERS["artifact_name"]
        assert record.attributes()["manufacturer"] in {
            m["name"] for m in METERS["identity"]["manufacturers"]
        }
        public = keys.load_public(record.public_key_pem)
        assert keys.verify(public, keys.sign(record.private_key(), b"body"), b"body")
        assert store.profiles()["cars"]["name"] == "cars"
        assert store.fleet_config()["groups"] == [
            {"profile": "cars", "count": 40},
            {"profile": "meters", "count": 30},
        ]


def test_states_and_history_written_back_in_one_transaction(seeded):
    with SeedStore.open(seeded) as store:
        first, second = store.device_ids()[:2]
        history = [DeploymentRecord("d1", "tcu-fw-5.0.0", 100.0, 160.0, "success")]
        failed = [DeploymentRecord("d1", "tcu-fw-5.0.0", 100.0, 130.0, "failure", "no space")]
        store.save_states(
            [
                DeviceStateUpdate(
                    first, "accepted", "tcu-fw-5.0.0", "b", {"rootfs": "x"}, history, SERVER
                ),
                DeviceStateUpdate(second, "accepted", "tcu-fw-4.2.1", "a", {}, failed, SERVER),
            ]
        )
        record = store.load_devices(device_ids=[first], server=SERVER)[0]
        assert (record.status, record.artifact_name, record.partition) == (
            "accepted",
            "tcu-fw-5.0.0",
            "b",
        )
        assert record.provides == {"rootfs": "x"}
        with pytest.raises(StoreError, match="unknown devices in state update"):
            store.save_states(
                [
                    DeviceStateUpdate(second, "rejected", "z", "a", {}, history, SERVER),
                    DeviceStateUpdate("ghost-000001", "accepted", "z", "a", {}, [], SERVER),
                ]
            )
        rolled_back = store.load_devices(device_ids=[second], server=SERVER)[0]
        assert rolled_back.status == "accepted"
        summary = store.summary()
    assert summary["by_server"] == {"https://mender.example.com": {"accepted": 2}}
    assert summary["deployments_by_result"] == {"failure": 1, "success": 1}
    assert summary["by_artifact"]["tcu-fw-5.0.0"] == 1


def test_open_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(StoreError, match="no such seed store"):
        SeedStore.open(tmp_path / "missing.db")
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a seed store"):
        SeedStore.open(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a seed store"):
        SeedStore.open(other)


def seed(path, db):
    return seed_store(load_fleet(path), db, workers=2, progress=False)


def test_changed_config_adds_grown_and_new_groups(write_fleet, tmp_path):
    profiles = {"cars": CARS, "meters": METERS}
    db = tmp_path / "f.db"
    first = seed(write_fleet([("cars", 10)], profiles=profiles), db)
    assert (first.total, first.added, first.already) == (10, 10, 0)
    grown = write_fleet(
        [("cars", 15), ("meters", 5)], profiles=profiles, server_url="http://10.0.0.1:80"
    )
    second = seed(grown, db)
    assert (second.total, second.added, second.already) == (20, 10, 10)
    assert seed(grown, db).added == 0
    with SeedStore.open(db) as store:
        assert store.summary()["by_profile"] == {"cars": 15, "meters": 5}
        assert store.fleet_config()["server_url"] == "http://10.0.0.1:80"


@pytest.mark.parametrize(
    ("groups", "seed_value", "cars", "reason"),
    [
        ([("cars", 5)], 7, CARS, r"groups\[0\].count shrank from 10 to 5"),
        ([("cars", 10)], 8, CARS, r"the fleet seed changed \(7 → 8\)"),
        ([("meters", 10)], 7, CARS, r"groups\[0\].profile changed from 'cars' to 'meters'"),
        (
            [("cars", 10)],
            7,
            variant("automotive", "cars", artifact_name="x"),
            "profile 'cars' changed since the store was seeded",
        ),
    ],
)
def test_changed_config_refused(write_fleet, tmp_path, groups, seed_value, cars, reason):
    db = tmp_path / "f.db"
    seed(write_fleet([("cars", 10)], profiles={"cars": CARS, "meters": METERS}), db)
    changed = write_fleet(groups, profiles={"cars": cars, "meters": METERS}, seed=seed_value)
    with pytest.raises(SeedRefused, match=f"refused: {reason}; seed the changed fleet into a new"):
        seed(changed, db)
    with SeedStore.open(db) as store:
        assert store.summary()["devices"] == 10


def test_removed_group_refused(write_fleet, tmp_path):
    db = tmp_path / "f.db"
    profiles = {"cars": CARS, "meters": METERS}
    seed(write_fleet([("cars", 3), ("meters", 3)], profiles=profiles), db)
    with pytest.raises(SeedRefused, match=r"groups\[1\] \(meters, 3 devices\) was removed"):
        seed(write_fleet([("cars", 3)], profiles=profiles), db)


def test_groups_sharing_a_profile_get_distinct_ids_and_identities(write_fleet, tmp_path):
    db = tmp_path / "f.db"
    seed(
        write_fleet(
            [("cars", 300), ("meters", 2), ("cars", 300)], profiles={"cars": CARS, "meters": METERS}
        ),
        db,
    )
    with SeedStore.open(db) as store:
        records = store.load_devices(profiles=["cars"])
    assert records[300].device_id == "cars-2-000000"
    assert len({r.id_data_json() for r in records}) == 600


def test_identities_reproducible_under_the_seed(write_fleet, tmp_path):
    path = write_fleet([("cars", 20), ("meters", 20)], profiles={"cars": CARS, "meters": METERS})
    seed(path, tmp_path / "a.db")
    seed(path, tmp_path / "b.db")
    with SeedStore.open(tmp_path / "a.db") as a, SeedStore.open(tmp_path / "b.db") as b:
        left, right = a.load_devices(), b.load_devices()
    same = ("device_id", "id_data", "device_type", "inventory", "key_type")
    assert [[getattr(r, f) for f in same] for r in left] == [
        [getattr(r, f) for f in same] for r in right
    ]
    assert left[0].private_key_pem != right[0].private_key_pem  # keys are fresh randomness


def test_fleet_command_text_and_json(seeded, capsys):
    assert cli.main(["fleet", str(seeded)]) == 0
    text = capsys.readouterr().out
    assert f"Seed store {seeded}: 70 devices" in text
    assert "Devices by profile" in text and "cars" in text and "57.1 %" in text
    assert "Deployments by result\n  (none)" in text
    assert cli.main(["fleet", str(seeded), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["devices"] == 70
    assert summary["by_profile"] == {"cars": 40, "meters": 30}
    assert summary["by_key_type"] == {"ecdsa-p256": 30, "ed25519": 40}
    assert summary["by_server"] == {}


def test_fleet_command_errors_in_one_line(tmp_path, capsys):
    assert cli.main(["fleet", str(tmp_path / "none.db")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mendersim: error: {tmp_path / 'none.db'}: no such seed store"
        " (create it with `mendersim seed`)"
    )


def test_seed_logs_decisions_to_the_file_and_keeps_the_console_quiet(write_fleet, tmp_path, capfd):
    path = write_fleet([("cars", 12)], profiles={"cars": CARS})
    db, log_file = tmp_path / "f.db", tmp_path / "logs" / "sim.log"
    try:
        assert cli.main(["seed", str(path), "--db", str(db), "--log-file", str(log_file)]) == 0
        assert cli.main(["seed", str(path), "--db", str(db), "--log-file", str(log_file)]) == 0
    finally:
        logging.getLogger("mendersim").handlers.clear()
    out, err = capfd.readouterr()
    assert err == ""
    assert out.splitlines()[-1].startswith(f"{db}: 12 devices (0 added, 12 already stored) in ")
    log = log_file.read_text()
    assert "group 0: profile cars, 12 devices (0 already stored)" in log
    assert "resuming" in log and "12 devices added, 12 in total" in log
