"""Seed stores written by an older mendersim, brought to this schema in place.

A migration is one transaction: an interrupted one (Ctrl-C, SIGKILL, a full disk) leaves the
store as it was, and the next open migrates it again. Each step takes a store from one schema
version to the next.

- 1 → 2: device status moves from `devices.status` to the `acceptance` table, keyed by server
  and tenant. A version-1 status does not say which server gave it, so it is dropped: every
  device starts as new against every server, which is what a server that never saw it says.
  Identities, keys, installed artifacts and deployment history stay.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from mendersim.fleet import acceptance


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    conn.execute(acceptance.TABLE)
    conn.execute("ALTER TABLE devices DROP COLUMN status")


STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}


def upgrade(conn: sqlite3.Connection, target: int) -> int:
    """Migrate to `target` in one transaction; the version found before (sqlite3.Error on
    failure, nothing changed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read under the write lock: another process may have migrated since this one looked.
        (found,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(json.loads(found))
        for step in range(version, target):
            STEPS[step](conn)
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (json.dumps(target),)
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return version
