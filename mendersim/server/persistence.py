"""Optional SQLite persistence (`--db`): the fleet survives a restart.

Write-behind: the state records what changed, and `save` writes those rows (one JSON document
per device, artifact, deployment and device deployment) in one transaction, on a timer and at
shutdown. A crash loses at most one interval; a clean SIGTERM/SIGINT loses nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from mendersim.errors import MendersimError
from mendersim.server.state import (
    FINAL_STATUSES,
    Artifact,
    AuthSet,
    Deployment,
    Device,
    DeviceDeployment,
    ServerState,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deployments (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS device_deployments (
    deployment_id TEXT NOT NULL, device_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (deployment_id, device_id)
);
"""


def _dump(obj: Any) -> str:
    return json.dumps(dataclasses.asdict(obj))


def _dump_deployment(deployment: Deployment) -> str:
    """Without its device deployments (rows of their own) and counts (rebuilt on load)."""
    skip = ("devices", "counts")
    fields = dataclasses.fields(deployment)
    return json.dumps({f.name: getattr(deployment, f.name) for f in fields if f.name not in skip})


class Persistence:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Private from its first byte: it holds the JWT and download-link secrets. SQLite
            # gives its journal the file's mode.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise MendersimError(f"--db {path}: cannot create: {exc.strerror}") from None
        try:
            self._db = sqlite3.connect(path)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise MendersimError(f"--db {path}: cannot open as SQLite: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def remember_secrets(self, **values: bytes) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items()
            )

    def load(self, state: ServerState) -> dict[str, bytes]:
        """Fill an empty state from the file; returns the stored secrets."""
        db = self._db
        for (data,) in db.execute("SELECT data FROM devices"):
            fields = json.loads(data)
            fields["auth_sets"] = [AuthSet(**a) for a in fields["auth_sets"]]
            device = Device(**fields)
            state.devices[device.id] = device
            state.by_id_data[device.id_data] = device
            state.device_counts[device.status] += 1
        for (data,) in db.execute("SELECT data FROM artifacts"):
            artifact = Artifact(**json.loads(data))
            state.artifacts[artifact.id] = artifact
        for (data,) in db.execute("SELECT data FROM deployments ORDER BY rowid"):
            deployment = Deployment(**json.loads(data))
            state.deployments[deployment.id] = deployment
        rows = db.execute("SELECT data FROM device_deployments ORDER BY rowid")
        for (data,) in rows:
            dd = DeviceDeployment(**json.loads(data))
            deployment = state.deployments.get(dd.deployment_id)
            if deployment is None:
                continue
            deployment.devices[dd.device_id] = dd
            deployment.counts[dd.status] += 1
            state.dd_counts[dd.status] += 1
            if dd.status not in FINAL_STATUSES:
                state.active.setdefault(dd.device_id, []).append(dd)
        for active in state.active.values():
            active.sort(key=lambda dd: dd.created)  # oldest deployment first, as when created
        for key in ("devices", "artifacts", "deployments", "device_deployments"):
            getattr(state, f"dirty_{key}").clear()
        return {key: bytes(value) for key, value in db.execute("SELECT key, value FROM meta")}

    def save(self, state: ServerState) -> None:
        """Write the rows changed since the last save."""
        devices, state.dirty_devices = state.dirty_devices, set()
        artifacts, state.dirty_artifacts = state.dirty_artifacts, set()
        deployments, state.dirty_deployments = state.dirty_deployments, set()
        pairs, state.dirty_device_deployments = state.dirty_device_deployments, set()
        if not (devices or artifacts or deployments or pairs):
            return
        upsert = "INSERT OR REPLACE INTO {} (id, data) VALUES (?, ?)"
        with self._db as db:
            db.executemany(
                upsert.format("devices"),
                [(i, _dump(state.devices[i])) for i in devices if i in state.devices],
            )
            db.executemany(
                upsert.format("artifacts"),
                [(i, _dump(state.artifacts[i])) for i in artifacts if i in state.artifacts],
            )
            db.executemany(
                upsert.format("deployments"),
                [
                    (i, _dump_deployment(state.deployments[i]))
                    for i in deployments
                    if i in state.deployments
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO device_deployments (deployment_id, device_id, data) "
                "VALUES (?, ?, ?)",
                [
                    (dep, dev, _dump(state.deployments[dep].devices[dev]))
                    for dep, dev in pairs
                    if dep in state.deployments and dev in state.deployments[dep].devices
                ],
            )
