"""Write-behind saving of `--db`, with a durable path for answers that promise a write.

Most changes (a poll's timestamp, an inventory PUT) may be lost in the last flush interval of a
crash: the device repeats them anyway. A finished deployment may not: a device told 204 for its
`success` never reports it again, so a lost row makes the server hand it the same deployment.
Handlers of such answers await `durable()`, which saves within a short batch window (group
commit: one SQLite transaction for every answer waiting) and only then lets them answer.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from mendersim.server.persistence import Persistence
from mendersim.server.state import ServerState

log = logging.getLogger(__name__)

BATCH_WINDOW = 0.01  # seconds an urgent save waits for more answers to join its transaction


class CommitLog:
    def __init__(self, persistence: Persistence, state: ServerState, interval: float) -> None:
        self.persistence = persistence
        self.state = state
        self.interval = interval
        self._waiting: list[asyncio.Future[None]] = []
        self._urgent = asyncio.Event()

    async def durable(self) -> None:
        """Return once everything changed so far is committed to the database."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        self._urgent.set()
        await done

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._urgent.wait(), self.interval)
                await asyncio.sleep(BATCH_WINDOW)
            except asyncio.TimeoutError:
                pass
            try:
                self.save()
            except (sqlite3.Error, OSError) as exc:  # answered as 500s; devices report again
                log.error("saving %s failed: %s", self.persistence.path, exc)

    def save(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._urgent.clear()
        try:
            self.persistence.save(self.state)
        except (sqlite3.Error, OSError) as exc:  # a failed commit must not be answered as done
            for done in waiting:
                done.set_exception(exc)
            raise
        for done in waiting:
            done.set_result(None)
