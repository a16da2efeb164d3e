"""Master side (and standalone): the seed store, device leases and state write-back.

Only this process opens the store. Workers ask for devices (`LEASE`); the coordinator leases
them by worker name and sends their records in chunks (`SLICE`); state updates come back
(`STATES`) as soon as they happen and are committed about once a second by the store writer,
and everything pending at the end of a run is collected (`COLLECT`) and written before the
process exits.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.queue import Queue

from mendersim.fleet import acceptance
from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.store import SeedStore
from mendersim.harness import wire
from mendersim.harness.config.options import HarnessOptions
from mendersim.harness.coordination.leases import LeaseBook, NotEnoughDevices
from mendersim.harness.coordination.storewriter import StoreWriter

logger = logging.getLogger(__name__)

LEASE_PATIENCE_S = 10.0  # how long a lease waits for devices other workers are giving back
COLLECT_TIMEOUT_S = 20.0


class Coordinator:
    def __init__(
        self,
        environment: Any,
        store: SeedStore,
        options: HarnessOptions,
        *,
        on_refused: Callable[[str], None],
        live_workers: Callable[[], set[str]],
    ) -> None:
        self._environment = environment
        self._store = store
        self.writer = StoreWriter(store)
        self.writer.apply_side_file()  # what a previous run could not write, before any lease
        self._options = options
        self._on_refused = on_refused
        self._live_workers = live_workers
        profiles = list(options.profiles) or None
        self.book = LeaseBook(store.device_ids(profiles))
        gc.freeze()  # the fleet's ids stay for the run; full collections need not walk them
        self._profiles = store.profiles()
        self._fleet = store.fleet_config()
        self._embedded_url: str | None = None
        self._key_of: dict[str, str] = {}  # Locust client id → lease key
        self._awaiting_final: set[str] = set()
        self._all_final = Event()
        # Leases are served one at a time by their own greenlet, which yields between chunks:
        # the message loop that receives them also receives the workers' heartbeats.
        self._leases: Queue = Queue()
        self._leaser = gevent.spawn(self._serve_leases)

    def reconfigure(self, options: HarnessOptions) -> None:
        """Options of a new swarm: a changed profile filter shares out another fleet."""
        if options.profiles != self._options.profiles:
            self.book = LeaseBook(self._store.device_ids(list(options.profiles) or None))
        self._options = options

    @property
    def fleet_size(self) -> int:
        return self.book.fleet_size

    @property
    def fleet_config(self) -> dict[str, Any]:
        """The store's fleet config, as read when the run started."""
        return self._fleet

    def device_types(self) -> list[str]:
        """Every device type the simulated profiles may have (what a rollout artifact needs)."""
        names = self._options.profiles or tuple(self._profiles)
        types = {
            entry["value"] if isinstance(entry, dict) else entry
            for name in names
            for entry in self._profiles.get(name, {}).get("device_types", [])
        }
        return sorted(types)

    def poll_interval(self) -> float:
        """The fleet's longest poll interval (seconds, unscaled)."""
        configured = self._fleet.get("poll_interval")
        if configured:
            return float(configured)
        names = self._options.profiles or tuple(self._profiles)
        polls = [
            float(self._profiles.get(name, {}).get("intervals", {}).get("update_poll", 1800))
            for name in names
        ]
        return max(polls, default=1800.0)

    def identities(self) -> set[str]:
        """Identity keys (sorted, compact id_data) of the devices simulated now: a device the
        server accepted in an earlier run but nobody simulates would never finish a rollout."""
        wanted = self.book.in_hand()
        keys: set[str] = set()
        for start in range(0, len(wanted), 5000):
            chunk = self._store.load_devices(device_ids=wanted[start : start + 5000])
            keys.update(record.id_data_json() for record in chunk)
        return keys

    def tenant_token(self) -> str:
        return self._options.tenant_token or self._fleet.get("tenant_token") or ""

    def use_embedded(self, url: str) -> None:
        """The run's embedded server at `url` starts empty: so do its statuses in the store."""
        self._embedded_url = url
        self._store.forget_server(acceptance.EMBEDDED)

    def acceptance_key(self) -> ServerKey:
        """Whose device statuses this swarm reads and writes: its server and tenant."""
        host = self._environment.host or ""
        if host == self._embedded_url:
            return ServerKey.embedded(self.tenant_token())
        return ServerKey.of(host, self.tenant_token())

    def engine_settings(self) -> dict[str, Any]:
        """What every worker's devices need besides their records."""
        options = self._options
        spread: float | None = None  # the engine's default: one poll interval
        if options.scenario == "ramp":
            # The window is real seconds; the engine scales its spread by the time scale.
            spread = options.ramp_window / options.time_scale
        return {
            "tenant_token": self.tenant_token(),
            "poll_interval": self._fleet.get("poll_interval"),
            "seed": int(self._fleet.get("seed") or 0),
            "time_scale": options.time_scale,
            "connection": options.connection,
            "idle_timeout": options.idle_timeout,
            "start_spread": spread,
            "traffic": [list(pair) for pair in options.traffic],
            "deviceconnect_ping": options.deviceconnect_ping,
        }

    # -- messages ------------------------------------------------------------------------------

    def on_lease(self, environment: Any, msg: Any) -> None:
        self._leases.put((msg.node_id, msg.data, time.monotonic() + LEASE_PATIENCE_S))

    def _serve_leases(self) -> None:
        while True:
            self._lease(*self._leases.get())

    def on_return(self, environment: Any, msg: Any) -> None:
        key = self._key_of.get(msg.node_id)
        if key is not None:
            self.book.give_back(key, msg.data["ids"])

    def _lease(self, client: str, request: dict[str, Any], deadline: float) -> None:
        key = self._key_for(client, str(request["key"]))
        live = {self._key_of[c] for c in self._live_workers() if c in self._key_of}
        try:
            wanted = self.book.lease(key, int(request["more"]), live, restart=request["restart"])
        except NotEnoughDevices as exc:
            if time.monotonic() < deadline:  # users moving between workers bring devices back
                retry = (client, {**request, "restart": False}, deadline)
                gevent.spawn_later(0.5, self._leases.put, retry)
                return
            self._send(client, {"records": [], "error": str(exc), "last": True})
            self._on_refused(str(exc))
            return
        logger.info(
            "worker %s: %d more devices, %d leased", key, len(wanted), len(self.book.leased(key))
        )
        self.write_pending()  # records sent out must carry the latest state
        server = self.acceptance_key()
        first = True
        for start in range(0, max(len(wanted), 1), wire.CHUNK):
            chunk = wanted[start : start + wire.CHUNK]
            records = self._store.load_devices(device_ids=chunk, server=server)
            data: dict[str, Any] = {
                "records": [wire.record_to_wire(r) for r in records],
                "last": start + wire.CHUNK >= len(wanted),
            }
            if first:
                data["engine"] = self.engine_settings()
                data["profiles"] = self._profiles
                first = False
            self._send(client, data)
            gevent.sleep(0)

    def on_states(self, environment: Any, msg: Any) -> None:
        updates = [wire.update_from_wire(item) for item in msg.data["updates"]]
        server = self.acceptance_key()
        for update in updates:
            update.server = server
        self.writer.add(updates)
        if msg.data.get("final"):
            self._awaiting_final.discard(msg.node_id)
            if not self._awaiting_final:
                self._all_final.set()

    # -- run life ------------------------------------------------------------------------------

    def start_writing(self) -> None:
        self.writer.start()

    def collect(self, clients: list[str], *, quitting: bool = False) -> None:
        """Ask every worker holding devices for its final state, wait (bounded), write it all.
        `quitting`: the run ends with this stop, so workers need not end their users."""
        holders = [c for c in clients if c in self._key_of]
        self._awaiting_final = set(holders)
        self._all_final.clear()
        for client in holders:
            self._environment.runner.send_message(
                wire.COLLECT, {"quitting": quitting}, client_id=client
            )
        if self._awaiting_final and not self._all_final.wait(COLLECT_TIMEOUT_S):
            logger.warning(
                "no final device state from %d worker(s) after %.0f s; their last reported "
                "state is kept",
                len(self._awaiting_final),
                COLLECT_TIMEOUT_S,
            )
        self.write_pending()

    def finish(self) -> None:
        """Stop serving leases and the writer after its final write (the store stays open)."""
        self._leaser.kill(block=False)
        self.writer.stop()

    # -- internals -----------------------------------------------------------------------------

    def _key_for(self, client: str, asked: str) -> str:
        """The lease key of a client; a name already used by another live worker gets suffixed."""
        known = self._key_of.get(client)
        if known is not None:
            return known
        live = self._live_workers()
        taken = {self._key_of[c] for c in live if c in self._key_of and c != client}
        key = asked if asked not in taken else f"{asked}/{client}"
        if key != asked:
            logger.warning("worker name %r is in use by another worker; using %r", asked, key)
        self._key_of[client] = key
        return key

    def _send(self, client: str, data: dict[str, Any]) -> None:
        self._environment.runner.send_message(wire.SLICE, data, client_id=client)

    def write_pending(self) -> None:
        self.writer.write()
