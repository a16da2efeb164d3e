"""Seeding and loading at scale, bounded: a 20,000-device seed is complete and valid, records stay
compact, and keys written without curve arithmetic sign as the server verifies."""

from __future__ import annotations

import base64
import sqlite3
import tracemalloc

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fleet_helpers import identity_index, variant

from mendersim.fleet import keys
from mendersim.fleet.profiles import load_fleet
from mendersim.fleet.seed import seed_store
from mendersim.fleet.store import DEVICE_COLUMNS, SeedStore, StoreError

COUNT = 20_000
CARS = variant("automotive", "cars", key_type="ed25519")
PKCS8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8)


@pytest.fixture
def seeded(write_fleet, tmp_path):
    fleet = load_fleet(write_fleet([("cars", COUNT)], profiles={"cars": CARS}))
    db = tmp_path / "fleet.db"
    result = seed_store(fleet, db, workers=2, progress=False)
    assert (result.added, result.total) == (COUNT, COUNT)
    return db


def test_an_ed25519_key_is_written_exactly_as_cryptography_writes_it():
    pems = {keys.new_private_pem("ed25519") for _ in range(200)}
    assert len(pems) == 200  # fresh randomness every time
    for pem in pems:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        assert key.private_bytes(*PKCS8, serialization.NoEncryption()) == pem


def test_a_bounded_seed_is_complete_valid_and_signs(seeded):
    with sqlite3.connect(seeded) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        seqs = [row[0] for row in conn.execute("SELECT seq FROM devices ORDER BY seq")]
        stored_public = conn.execute("SELECT DISTINCT public_key_pem FROM devices").fetchall()
    assert seqs == list(range(COUNT))
    assert stored_public == [("",)]  # only the private key is kept, as on a device
    assert "UNIQUE" in (identity_index(seeded) or "")
    with SeedStore.open(seeded) as store:
        records = store.load_devices()
    assert [r.device_id for r in records] == [f"cars-{i:06d}" for i in range(COUNT)]
    assert len({r.id_data_json() for r in records}) == COUNT
    assert len({r.private_key_pem for r in records}) == COUNT
    for record in records:  # every key a whole PKCS#8 Ed25519 key
        lines = record.private_key_pem.decode().splitlines()
        der = base64.b64decode(lines[1])
        assert lines[0::2] == ["-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"]
        assert len(der) == 48 and der.startswith(bytes.fromhex("302e020100300506032b6570"))
    for record in records[:: COUNT // 400]:  # keys built when needed sign as the server checks
        body = record.id_data_json().encode()
        signature = keys.sign(record.private_key(), body)
        public = keys.load_public(record.public_key_pem)
        assert keys.key_type_of(public) == "ed25519"
        assert keys.verify(public, signature, body)
        assert not keys.verify(public, signature, body + b" ")


def test_a_loaded_record_costs_under_a_kilobyte(seeded):
    with SeedStore.open(seeded) as store:
        tracemalloc.start()
        try:
            records = store.load_devices()
            used, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(records) == COUNT
    assert used / COUNT < 1024, f"{used / COUNT:.0f} bytes per record"


def test_a_store_keeps_refusing_a_second_device_with_one_identity(seeded):
    with SeedStore.open(seeded) as store:
        (record,) = store.load_devices(limit=1)
        row = dict.fromkeys(DEVICE_COLUMNS, "x")
        row.update(device_id="cars-999999", group_index=0, seq=999_999, updated_at=0.0)
        row.update(id_data=record.id_data_json(), private_key_pem=record.private_key_pem)
        with pytest.raises(StoreError, match=r"UNIQUE constraint failed: devices\.id_data"):
            store.insert_devices([tuple(row.values())])
        store.defer_identity_index()  # as a seed does while it adds devices
        store.insert_devices([tuple(row.values())])
        with pytest.raises(StoreError, match="devices share an identity"):
            store.build_identity_index()


def test_devices_seeded_with_their_public_keys_send_those_keys(seeded):
    """Seeds before public keys were derived stored both PEMs; a device still sends its own."""
    stored = {}
    rows = []
    for n, key_type in enumerate(keys.KEY_TYPES):
        key = keys.generate(key_type)
        row = dict.fromkeys(DEVICE_COLUMNS, "x")
        row.update(device_id=f"old-{n}", group_index=1, seq=n, key_type=key_type)
        row.update(id_data=f'{{"serial":"old-{n}"}}', inventory="{}", updated_at=0.0)
        row.update(private_key_pem=keys.private_pem(key), public_key_pem=keys.public_pem(key))
        stored[row["device_id"]] = row["public_key_pem"]
        rows.append(tuple(row.values()))
    with SeedStore.open(seeded) as store:
        store.insert_devices(rows)
        loaded = store.load_devices(device_ids=list(stored))
    assert {r.device_id: r.public_key_pem for r in loaded} == stored
