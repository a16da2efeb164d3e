"""A device's acceptance belongs to a server: the store keeps it per server URL and tenant, never
the tenant token itself, and stores of the first schema migrate in place, all or nothing."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from fleet_helpers import variant

from mendersim import cli
from mendersim.errors import ConfigError
from mendersim.fleet import keys
from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeviceStateUpdate
from mendersim.fleet.store import SCHEMA_VERSION, SeedStore, StoreError
from mendersim.fleet.summary import format_summary

CARS = variant("automotive", "cars")
TENANT_TOKEN = "eyJhbGciOiJIUzI1NiJ9.tenant-7d41c09e5b.sig"
STAGING = ServerKey.of("https://staging.example.com")
PRODUCTION = ServerKey.of("https://mender.example.com")
TENANT = ServerKey.of("https://mender.example.com", TENANT_TOKEN)

# The first schema, as mendersim wrote it until statuses were kept per server.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE profiles (name TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    group_index INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    profile TEXT NOT NULL,
    key_type TEXT NOT NULL,
    id_data TEXT NOT NULL UNIQUE,
    private_key_pem BLOB NOT NULL,
    public_key_pem TEXT NOT NULL,
    device_type TEXT NOT NULL,
    artifact_name TEXT NOT NULL,
    inventory TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    partition TEXT NOT NULL DEFAULT 'a',
    provides TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL,
    UNIQUE (group_index, seq)
);
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (device_id),
    deployment_id TEXT NOT NULL,
    artifact_name TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    result TEXT,
    failure_reason TEXT
);
CREATE INDEX deployments_device ON deployments (device_id);
"""
V1_COLUMNS = (
    "device_id, group_index, seq, profile, key_type, id_data, private_key_pem, public_key_pem,"
    " device_type, artifact_name, inventory, partition, provides, updated_at"
)


@pytest.fixture
def seeded(write_fleet, tmp_path):
    path = write_fleet([("cars", 12)], profiles={"cars": CARS})
    db = tmp_path / "fleet.db"
    log_file = tmp_path / "sim.log"
    assert (
        cli.main(["seed", str(path), "--db", str(db), "--quiet", "--log-file", str(log_file)]) == 0
    )
    yield db
    logging.getLogger("mendersim").handlers.clear()


@pytest.fixture
def v1_store(seeded, tmp_path):
    """The seeded fleet in a store of schema version 1, some devices accepted, one deployed."""
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    conn.executescript(SCHEMA_V1)
    conn.execute("ATTACH DATABASE ? AS new", (str(seeded),))
    conn.execute("INSERT INTO meta SELECT key, value FROM new.meta")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.execute("INSERT INTO profiles SELECT * FROM new.profiles")
    conn.execute(f"INSERT INTO devices ({V1_COLUMNS}) SELECT {V1_COLUMNS} FROM new.devices")
    conn.execute("DETACH DATABASE new")
    conn.execute("UPDATE devices SET status = 'accepted' WHERE seq < 5")
    conn.execute("UPDATE devices SET artifact_name = 'fw-2', partition = 'b' WHERE seq = 0")
    conn.execute(
        "INSERT INTO deployments (device_id, deployment_id, artifact_name, started, finished,"
        " result) SELECT device_id, 'd1', 'fw-2', 1.0, 2.0, 'success' FROM devices WHERE seq = 0"
    )
    conn.close()
    return old


def _columns(path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_server_keys_name_one_server_and_keep_no_secret():
    key = ServerKey.of("HTTPS://ops:pa55@Mender.Example.com:443/", TENANT_TOKEN)
    assert key.url == "https://mender.example.com"
    assert key.tenant.startswith("sha256:") and TENANT_TOKEN not in str(key)
    assert ServerKey.of("http://127.0.0.1:8080/api/") == ServerKey("http://127.0.0.1:8080/api")
    assert ServerKey.of("https://mender.example.com:8443").url == "https://mender.example.com:8443"
    assert ServerKey.of("https://h", "a").tenant != ServerKey.of("https://h", "b").tenant
    for bad in ("mender.example.com", "ftp://mender.example.com", "http://h:99999"):
        with pytest.raises(ConfigError, match="--host"):
            ServerKey.of(bad)


def test_a_status_belongs_to_its_server_and_tenant(seeded):
    with SeedStore.open(seeded) as store:
        ids = store.device_ids()
        store.save_states(
            [DeviceStateUpdate(i, "accepted", "fw", "a", {}, [], PRODUCTION) for i in ids[:4]]
            + [DeviceStateUpdate(ids[4], "rejected", "fw", "a", {}, [], PRODUCTION)]
            + [DeviceStateUpdate(i, "pending", "fw", "a", {}, [], TENANT) for i in ids[:2]]
            + [DeviceStateUpdate(ids[5], "new", "fw", "a", {}, [], STAGING)]  # no answer yet
            + [DeviceStateUpdate(ids[6], "accepted", "fw", "a", {}, [], None)]  # forgets
        )

        def statuses(server):
            return [r.status for r in store.load_devices(device_ids=ids[:7], server=server)]

        assert statuses(PRODUCTION) == ["accepted"] * 4 + ["rejected", "new", "new"]
        assert statuses(TENANT) == ["pending"] * 2 + ["new"] * 5
        assert statuses(STAGING) == ["new"] * 7
        assert statuses(None) == ["new"] * 7
        # the same server spelt differently is the same server
        again = ServerKey.of("https://MENDER.example.com/")
        assert store.load_devices(device_ids=ids[:1], server=again)[0].status == "accepted"
        summary = store.summary()
    assert summary["by_server"] == {
        "https://mender.example.com": {"accepted": 4, "rejected": 1},
        f"https://mender.example.com (tenant {TENANT.tenant})": {"pending": 2},
    }
    text = format_summary(summary)
    assert "Devices by status on https://mender.example.com\n  accepted         4   33.3 %" in text
    assert f"on https://mender.example.com (tenant {TENANT.tenant})\n  pending" in text
    for name in (seeded.name, seeded.name + "-wal"):
        data = (seeded.parent / name).read_bytes() if (seeded.parent / name).exists() else b""
        assert TENANT_TOKEN.encode() not in data


def test_a_first_schema_store_migrates_in_place(v1_store, capsys):
    with SeedStore.open(v1_store) as store:
        assert store.meta()["schema_version"] == SCHEMA_VERSION == 2
        records = store.load_devices(server=PRODUCTION)
        (history,) = store.summary()["deployments_by_result"].items()
    # identities, keys, installed artifacts and history stay; a status of no known server goes
    assert len(records) == 12 and {r.status for r in records} == {"new"}
    assert (records[0].artifact_name, records[0].partition) == ("fw-2", "b")
    assert keys.public_pem(records[0].private_key()) == records[0].public_key_pem
    assert history == ("success", 1)
    assert "status" not in _columns(v1_store, "devices")
    assert "server" in _columns(v1_store, "acceptance")
    assert cli.main(["fleet", str(v1_store), "--json"]) == 0  # opens as any current store
    assert json.loads(capsys.readouterr().out)["by_server"] == {}


MIGRATE_THEN_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from mendersim.fleet import migrate
    from mendersim.fleet.store import SeedStore

    step = migrate.STEPS[1]

    def step_then_sigkill(conn):
        step(conn)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: the DDL done, no COMMIT

    migrate.STEPS[1] = step_then_sigkill
    SeedStore.open(sys.argv[1])
    """
)


def test_a_migration_killed_halfway_leaves_the_old_store(v1_store):
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE_THEN_DIE, str(v1_store)], capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    with sqlite3.connect(v1_store) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "1",
        )
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "acceptance" not in tables
        assert conn.execute(
            "SELECT COUNT(*) FROM devices WHERE status = 'accepted'"
        ).fetchone() == (5,)
    with SeedStore.open(v1_store) as store:  # the next open migrates it whole
        assert store.meta()["schema_version"] == 2 and len(store.device_ids()) == 12


def test_a_store_of_an_unknown_schema_is_refused(seeded):
    with sqlite3.connect(seeded) as conn:
        conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 9, this mendersim reads 2"):
        SeedStore.open(seeded)
