"""The SQLite seed store: every device's identity, keys and state, plus deployment history.

One file per fleet, WAL mode, mode 0600 (it holds private keys). Seeding writes it in batches;
a run loads devices with one SELECT and writes state back in one transaction per batch.

A device keeps only its private key, as a real one does: `public_key_pem` is left empty since
the public key became derived when sent (stores seeded before hold it, and it is not read).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mendersim.errors import MendersimError
from mendersim.fleet import acceptance, migrate
from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeviceRecord, DeviceStateUpdate

SCHEMA_VERSION = 2  # 2: status per server and tenant (mendersim.fleet.migrate)

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE profiles (name TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    group_index INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    profile TEXT NOT NULL,
    key_type TEXT NOT NULL,
    id_data TEXT NOT NULL,
    private_key_pem BLOB NOT NULL,
    public_key_pem TEXT NOT NULL,
    device_type TEXT NOT NULL,
    artifact_name TEXT NOT NULL,
    inventory TEXT NOT NULL,
    partition TEXT NOT NULL DEFAULT 'a',
    provides TEXT NOT NULL DEFAULT '{{}}',
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
{acceptance.TABLE}"""

# Columns of a seeded device row, in insertion order (partition and provides default).
DEVICE_COLUMNS = (
    "device_id",
    "group_index",
    "seq",
    "profile",
    "key_type",
    "id_data",
    "private_key_pem",
    "public_key_pem",
    "device_type",
    "artifact_name",
    "inventory",
    "updated_at",
)
_INSERT_DEVICE = (
    f"INSERT INTO devices ({', '.join(DEVICE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(DEVICE_COLUMNS))})"
)
# The status is the one the given server and tenant last answered (new when none did).
_SELECT_DEVICE = (
    "SELECT d.device_id, profile, key_type, id_data, private_key_pem, device_type,"
    " artifact_name, inventory, COALESCE(a.status, 'new'), partition, provides"
    " FROM devices d LEFT JOIN acceptance a"
    " ON a.device_id = d.device_id AND a.server = ? AND a.tenant = ?"
)
# Identities are unique. Seeding appends without this index, whose random inserts would make
# every batch slower as the store grows, and builds it in one sorted pass when it completes.
# (Stores seeded before have the same rule as an inline UNIQUE constraint instead.)
_IDENTITY_INDEX = "devices_id_data"


class StoreError(MendersimError):
    """The seed store is missing, unreadable, or not a seed store."""


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class SeedStore:
    """A handle on one seed store file; use `open` (existing) or `create` (new)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    @classmethod
    def open(cls, path: str | Path) -> SeedStore:
        """Open an existing store; a missing file or another kind of file is a clear error."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: no such seed store (create it with `mendersim seed`)")
        try:
            conn = _connect(path, create=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a seed store ({exc})") from None
        try:
            _check_store(path, conn)
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    @classmethod
    def create(cls, path: str | Path, meta: dict[str, Any]) -> SeedStore:
        """Create a new store file, private (0600) from its first moment."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise StoreError(f"{path}: already exists") from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create: {exc.strerror}") from None
        try:
            store = cls(path, _connect(path, create=True))
            with store.transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                store.set_meta({"schema_version": SCHEMA_VERSION, **meta})
        except BaseException:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            raise
        return store

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: an exception (an interrupt too) rolls everything back."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SeedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- metadata and profiles -------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, Any]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()],
        )

    def fleet_config(self) -> dict[str, Any]:
        """The fleet config the store was (last) seeded from, defaults filled."""
        return self.meta()["fleet_config"]

    def profiles(self) -> dict[str, dict[str, Any]]:
        """Profile documents by name, as validated at seed time: runs need no YAML."""
        rows = self._conn.execute("SELECT name, document FROM profiles ORDER BY name")
        return {name: json.loads(document) for name, document in rows}

    def set_profiles(self, profiles: dict[str, dict[str, Any]]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO profiles (name, document) VALUES (?, ?)",
            [(name, json.dumps(doc, sort_keys=True)) for name, doc in profiles.items()],
        )

    # --- devices ----------------------------------------------------------------------------

    def insert_devices(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert seeded rows (DEVICE_COLUMNS order) as one transaction."""
        try:
            with self.transaction() as conn:
                conn.executemany(_INSERT_DEVICE, rows)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: cannot add devices: {exc}") from None

    def defer_identity_index(self) -> None:
        """Before a bulk insert: drop the identity index, rebuilt by `build_identity_index`."""
        self._conn.execute(f"DROP INDEX IF EXISTS {_IDENTITY_INDEX}")

    def build_identity_index(self) -> None:
        """Make sure the store refuses a second device with the same identity (one sorted
        pass over the table: about a second per million devices)."""
        unique_identity = self._conn.execute(
            "SELECT 1 FROM pragma_index_list('devices') AS l, pragma_index_info(l.name) AS i"
            " WHERE l.\"unique\" AND i.name = 'id_data'"
        ).fetchone()
        if unique_identity:
            return
        try:
            with self.transaction() as conn:
                conn.execute(f"CREATE UNIQUE INDEX {_IDENTITY_INDEX} ON devices (id_data)")
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: devices share an identity: {exc}") from None

    def seeded_indices(self) -> dict[int, set[int]]:
        """Which device indices each group already holds."""
        seeded: dict[int, set[int]] = {}
        for group, seq in self._conn.execute("SELECT group_index, seq FROM devices"):
            seeded.setdefault(group, set()).add(seq)
        return seeded

    def device_ids(self, profiles: Iterable[str] | None = None) -> list[str]:
        """Device ids in a stable order (group, then index): slice it to share out the fleet."""
        where, params = _profile_filter(profiles)
        sql = f"SELECT device_id FROM devices{where} ORDER BY group_index, seq"
        return [row[0] for row in self._conn.execute(sql, params)]

    def load_devices(
        self,
        *,
        profiles: Iterable[str] | None = None,
        device_ids: Iterable[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        server: ServerKey | None = None,
    ) -> list[DeviceRecord]:
        """Devices in `device_ids()` order, filtered by profile and id, then sliced; their
        status is the one `server` last gave them (without a server: new)."""
        where, params = _profile_filter(profiles)
        if device_ids is not None:
            where += " AND" if where else " WHERE"
            where += " d.device_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(device_ids)))
        sql = f"{_SELECT_DEVICE}{where} ORDER BY group_index, seq LIMIT ? OFFSET ?"
        joined = [server.url, server.tenant] if server is not None else ["", ""]
        params = [*joined, *params, -1 if limit is None else limit, offset]
        shared = DeviceRecord.shared
        return [
            shared(
                device_id,
                profile,
                key_type,
                id_data,
                private_pem,
                device_type,
                artifact_name,
                inventory,
                status,
                partition,
                {} if provides == "{}" else json.loads(provides),
            )
            for (
                device_id,
                profile,
                key_type,
                id_data,
                private_pem,
                device_type,
                artifact_name,
                inventory,
                status,
                partition,
                provides,
            ) in self._conn.execute(sql, params)
        ]

    def save_states(self, updates: Iterable[DeviceStateUpdate]) -> None:
        """Write devices' state and new history in one transaction; unknown ids roll it back.

        A status is kept for the update's server (none: not kept); new means no answer yet."""
        now = time.time()
        states = []
        statuses = []
        history = []
        for update in updates:
            if update.server is not None and update.status != "new":
                server = update.server
                statuses.append((update.device_id, server.url, server.tenant, update.status, now))
            states.append(
                (
                    update.artifact_name,
                    update.partition,
                    json.dumps(update.provides, sort_keys=True),
                    now,
                    update.device_id,
                )
            )
            history.extend(
                (
                    update.device_id,
                    record.deployment_id,
                    record.artifact_name,
                    record.started,
                    record.finished,
                    record.result,
                    record.failure_reason,
                )
                for record in update.history
            )
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "UPDATE devices SET artifact_name = ?, partition = ?, provides = ?,"
                " updated_at = ? WHERE device_id = ?",
                states,
            )
            if conn.total_changes - before != len(states):
                known = set(self.device_ids())
                unknown = sorted({s[-1] for s in states} - known)
                raise StoreError(f"{self.path}: unknown devices in state update: {unknown[:5]}")
            conn.executemany(acceptance.UPSERT, statuses)
            conn.executemany(
                "INSERT INTO deployments (device_id, deployment_id, artifact_name, started,"
                " finished, result, failure_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                history,
            )

    def forget_server(self, url: str) -> None:
        """Drop every status a server gave (all its tenants): it starts empty again."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM acceptance WHERE server = ?", (url,))

    def summary(self) -> dict[str, Any]:
        """Counts for `mendersim fleet`: devices by profile, key type, artifact, and by the
        status each server (and tenant) gave them."""

        def counts(sql: str) -> dict[str, int]:
            return {str(key): n for key, n in self._conn.execute(sql)}

        by = "SELECT {0}, COUNT(*) FROM devices GROUP BY {0} ORDER BY {0}"
        fleet = self.makeup()
        return {
            "path": str(self.path),
            "devices": sum(fleet["by_profile"].values()),
            "by_profile": fleet["by_profile"],
            "by_key_type": fleet["by_key_type"],
            "by_server": self._by_server(),
            "by_artifact": counts(by.format("artifact_name")),
            "deployments_by_result": counts(
                "SELECT COALESCE(result, 'unfinished'), COUNT(*) FROM deployments"
                " GROUP BY 1 ORDER BY 1"
            ),
        }

    def makeup(self) -> dict[str, dict[str, int]]:
        """Devices by profile, by key type and by both, in one scan of the store."""
        rows = self._conn.execute(
            "SELECT profile, key_type, COUNT(*) FROM devices GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        by_profile: Counter[str] = Counter()
        by_key_type: Counter[str] = Counter()
        for profile, key_type, count in rows:
            by_profile[profile] += count
            by_key_type[key_type] += count
        return {
            "by_profile": dict(sorted(by_profile.items())),
            "by_key_type": dict(sorted(by_key_type.items())),
            "by_profile_key": {f"{p} / {k}": n for p, k, n in rows},
        }

    def _by_server(self) -> dict[str, dict[str, int]]:
        by_server: dict[str, dict[str, int]] = {}
        rows = self._conn.execute(
            "SELECT server, tenant, status, COUNT(*) FROM acceptance"
            " GROUP BY server, tenant, status ORDER BY server, tenant, status"
        )
        for server, tenant, status, count in rows:
            by_server.setdefault(str(ServerKey(server, tenant)), {})[status] = count
        return by_server


_TABLES = {"meta", "profiles", "devices", "deployments", "acceptance"}
_META_KEYS = {"schema_version", "seed", "fleet_config"}


def _check_store(path: Path, conn: sqlite3.Connection) -> None:
    """A seed store of this version, whole: damage found now is one line, not a traceback
    from the middle of a run (quick_check reads every page, about a second per 200 MB)."""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            raise StoreError(f"{path}: not a seed store (no meta table)")
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        if "schema_version" not in meta:
            raise StoreError(f"{path}: not a seed store (no schema version)")
        version = int(json.loads(meta["schema_version"]))
        if version not in (*migrate.STEPS, SCHEMA_VERSION):
            raise StoreError(
                f"{path}: seed store schema version {meta['schema_version']}, this mendersim "
                f"reads {SCHEMA_VERSION}; seed a new store"
            )
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:
            lines = [line for line in problems[0].splitlines() if not line.startswith("***")]
            raise StoreError(f"{path}: damaged seed store ({lines[0] if lines else 'quick_check'})")
        if version != SCHEMA_VERSION:
            _migrate(path, conn, version)
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        missing = sorted((_TABLES - tables) | {f"meta.{k}" for k in _META_KEYS - set(meta)})
        if missing:
            raise StoreError(f"{path}: damaged seed store (missing {', '.join(missing)})")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: damaged seed store ({exc})") from None
    except ValueError as exc:
        raise StoreError(f"{path}: damaged seed store (bad meta value: {exc})") from None


def _migrate(path: Path, conn: sqlite3.Connection, version: int) -> None:
    try:
        migrate.upgrade(conn, SCHEMA_VERSION)
    except sqlite3.Error as exc:
        raise StoreError(
            f"{path}: cannot migrate the seed store from schema version {version} to "
            f"{SCHEMA_VERSION} ({exc}); it is unchanged"
        ) from None


def _profile_filter(profiles: Iterable[str] | None) -> tuple[str, list[Any]]:
    if profiles is None:
        return "", []
    return " WHERE profile IN (SELECT value FROM json_each(?))", [json.dumps(list(profiles))]
