"""The one writer of device state into the seed store: batched, retried, never silently lost.

State updates from the workers are committed about once a second in one transaction per batch.
A failed write (a full disk, a locked or damaged file) keeps its batch, says in one line what
failed and where, and is retried with backoff; the run then exits with STORE_BEHIND_EXIT. If the
last write at the end of the run still fails, the pending updates go to a JSON-lines side file
next to the store (`DB.pending.jsonl`), which the next run applies before it leases a device.

A full disk has no room for the side file either, so the writer keeps a small spare file
(`DB.spare`) for the whole run and deletes it to make that room.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import gevent

from mendersim.errors import MendersimError
from mendersim.fleet.model import DeviceStateUpdate
from mendersim.fleet.store import SeedStore
from mendersim.harness import wire

logger = logging.getLogger(__name__)

WRITE_EVERY_S = 1.0
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
FINAL_ATTEMPTS = 3
SPARE_BYTES = 1 << 20
STORE_BEHIND_EXIT = 3  # the run's exit code when device state did not reach the store


def side_file(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".pending.jsonl")


def spare_file(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".spare")


class StoreWriter:
    def __init__(self, store: SeedStore, *, sleep: Callable[[float], None] = gevent.sleep):
        self._store = store
        self._sleep = sleep
        self._pending: list[DeviceStateUpdate] = []
        self._retry_in = 0.0
        self._failed_since_ok = False
        self._loop: gevent.Greenlet | None = None
        self.written = 0
        self.behind = False  # a write failed and its updates have not reached the store since
        self.side_file_written: Path | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, updates: list[DeviceStateUpdate]) -> None:
        self._pending.extend(updates)

    # -- run life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Reserve the spare and start the write loop."""
        self._reserve_spare()
        if self._loop is None or self._loop.dead:
            self._loop = gevent.spawn(self._write_forever)

    def stop(self) -> None:
        """Stop the loop and make the final write: to the store, else to the side file."""
        if self._loop is not None:
            self._loop.kill(block=True)
            self._loop = None
        for attempt in range(FINAL_ATTEMPTS):
            if self.write() or not self._pending:
                break
            if attempt + 1 < FINAL_ATTEMPTS:
                self._sleep(RETRY_FIRST_S * (attempt + 1))
        if self._pending:
            self._write_side_file()
        else:
            spare_file(self._store.path).unlink(missing_ok=True)

    # -- writing -------------------------------------------------------------------------------

    def write(self) -> bool:
        """Commit what is pending in one transaction; False (batch kept) if that failed."""
        if not self._pending:
            return True
        batch = self._pending
        self._pending = []
        try:
            self._store.save_states(batch)
        except (sqlite3.Error, OSError, MendersimError) as exc:
            self._pending = batch + self._pending
            self.behind = True
            self._failed_since_ok = True
            self._retry_in = min(max(self._retry_in * 2, RETRY_FIRST_S), RETRY_MAX_S)
            logger.error(
                "store write failed: %s: %s; %d device states kept in memory, retrying in %.0f s",
                self._store.path,
                exc,
                len(self._pending),
                self._retry_in,
            )
            return False
        self.written += len(batch)
        if self._failed_since_ok:
            logger.warning(
                "store write to %s succeeded again; %d device states written",
                self._store.path,
                len(batch),
            )
            self._failed_since_ok = False
            self.behind = False
        self._retry_in = 0.0
        logger.debug("wrote %d device states to %s", len(batch), self._store.path)
        return True

    def _write_forever(self) -> None:
        while True:
            self._sleep(self._retry_in or WRITE_EVERY_S)
            self.write()

    # -- side file -----------------------------------------------------------------------------

    def _write_side_file(self) -> None:
        path = side_file(self._store.path)
        spare_file(self._store.path).unlink(missing_ok=True)  # room on a full disk
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                for update in self._pending:
                    out.write(json.dumps(wire.update_to_wire(update), separators=(",", ":")))
                    out.write("\n")
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            logger.error(
                "store write failed and the side file %s could not be written either (%s): "
                "%d device states are lost",
                path,
                exc.strerror or exc,
                len(self._pending),
            )
            return
        logger.error(
            "store %s is behind: %d device states saved to %s; the next run applies them",
            self._store.path,
            len(self._pending),
            path,
        )
        self.side_file_written = path
        self._pending = []

    def apply_side_file(self) -> int:
        """Write the updates of a side file into the store and remove it; returns how many."""
        path = side_file(self._store.path)
        if not path.exists():
            return 0
        updates = []
        try:
            with open(path, encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        updates.append(wire.update_from_wire(json.loads(line)))
                    except (ValueError, KeyError, TypeError) as exc:
                        # A line cut short by the crash that left the file: the rest still counts.
                        logger.warning("%s:%d: skipped, not a device state (%s)", path, number, exc)
        except OSError as exc:
            raise MendersimError(
                f"{path}: cannot read the store's side file: {exc.strerror}"
            ) from None
        try:
            self._store.save_states(updates)
        except (sqlite3.Error, OSError) as exc:
            raise MendersimError(
                f"{path}: cannot apply the side file to {self._store.path}: {exc}"
            ) from None
        path.unlink()
        logger.warning(
            "applied %d device states from %s to %s", len(updates), path, self._store.path
        )
        return len(updates)

    def _reserve_spare(self) -> None:
        spare = spare_file(self._store.path)
        try:
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, SPARE_BYTES)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.warning(
                "cannot reserve %s (%s): a full disk could lose the last states", spare, exc
            )
