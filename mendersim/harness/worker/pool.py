"""Worker side: the devices this process simulates, leased from the master in slices.

Users take a device when they start and give it back when they stop. Records arrive in
`SLICE` messages (the worker has no copy of the store); state updates go back in `STATES`
messages as soon as a device's state changes (changes within SEND_COALESCE_S share one message),
and when the master collects them at the end of a run. A SIGKILLed worker loses only what changed
in its last fraction of a second.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections import Counter, deque
from typing import Any

import gevent
from gevent.event import AsyncResult, Event
from locust.runners import WorkerRunner

from mendersim.device.behaviour import Behaviour
from mendersim.device.deviceconnect import PING_EVERY_S
from mendersim.device.engine import Device, EngineConfig
from mendersim.device.transport import IN_FLIGHT
from mendersim.errors import MendersimError
from mendersim.fleet.model import DeviceRecord, DeviceStateUpdate
from mendersim.harness import wire
from mendersim.harness.worker import lifetime
from mendersim.harness.worker.clock import GeventClock, LagHistogram
from mendersim.harness.worker.listener import FleetCounters, HarnessListener
from mendersim.harness.worker.transport import GeventTransport
from mendersim.telemetry.hub import hub_for

logger = logging.getLogger(__name__)

COALESCE_S = 0.05  # users spawning together share one lease request
RETURN_AFTER_S = 2.0  # idle devices go back to the master unless a new user takes them first
SEND_COALESCE_S = 0.25
IN_FLIGHT_GRACE_S = 3.0


NOT_ACCEPTED = "not accepted"


def seen_status(device: Device) -> str:
    """A device's status as this run has seen it: accepted only by an answer of this server."""
    if device.status == "rejected":
        return "rejected"
    return "accepted" if device.accepted_in_run else NOT_ACCEPTED


def engine_config(engine: dict[str, Any]) -> EngineConfig:
    """The engine settings of a lease, one object shared by every device built from it."""
    return EngineConfig(
        tenant_token=engine["tenant_token"],
        time_scale=engine["time_scale"],
        poll_interval=engine["poll_interval"],
        seed=engine["seed"],
        start_spread=engine["start_spread"],
        deviceconnect_ping=engine.get("deviceconnect_ping", PING_EVERY_S),
    )


def idle_timeout(engine: dict[str, Any]) -> float:
    """Seconds a device's connection may stay idle: 0 under `fresh`; under `keepalive` the
    timeout in device time, scaled as every device timer is, so that a time-scaled run holds
    connections between polls exactly when the same fleet at production timing would."""
    if engine["connection"] != "keepalive":
        return 0.0
    return float(engine["idle_timeout"]) * float(engine["time_scale"])


class LeaseRefused(MendersimError):
    """The master could not give this worker the devices its users need."""


class DevicePool:
    def __init__(self, environment: Any, key: str) -> None:
        self._environment = environment
        self._key = key
        self.lag = LagHistogram()
        self.counters = FleetCounters()
        self._clock = GeventClock(self.lag)
        self._listener = HarnessListener(environment, self.counters)
        self._idle: deque[DeviceRecord] = deque()
        self._waiters: deque[AsyncResult] = deque()
        self._asking = False
        self._restart = True  # this process holds no device of its lease yet
        self._returning = False
        self._engine: dict[str, Any] = {}
        self._config = EngineConfig()
        self._behaviours: dict[str, Behaviour] = {}
        self._records: dict[Device, DeviceRecord] = {}
        # `fresh` transports hold no state of a device: one per host and profile serves all;
        # a `keepalive` device has its own, closed when it leaves
        self._shared: dict[tuple[str, str], GeventTransport] = {}
        self._kept: dict[Device, GeventTransport] = {}
        self._updates: list[DeviceStateUpdate] = []
        self._flusher: gevent.Greenlet | None = None
        # the fleet as it was handed in at the end of a swarm, once its users are ended
        self._handed_in: tuple[Counter[str], Counter[str]] | None = None
        self._left: list[gevent.Greenlet] = []  # users left to the process's exit
        self._closed = False  # handing in, or handed in: no device starts until the next swarm
        self.telemetry = hub_for(
            environment, key, shared_truth=not isinstance(environment.runner, WorkerRunner)
        )

    # -- users ---------------------------------------------------------------------------------

    def acquire(self) -> Device:
        """A device for a starting user; waits for the master's slice if none is at hand.
        A user Locust still starts once the hand-in has begun waits to be ended (or for the
        process's exit): its device would run with nothing left to take its state."""
        if self._closed:
            Event().wait()
        if self._idle:
            record = self._idle.popleft()
        else:
            waiter: AsyncResult = AsyncResult()
            self._waiters.append(waiter)
            self._ask_soon()
            record = waiter.get()
            if self._closed:  # the hand-in began while the slice was on its way
                self._idle.appendleft(record)
                Event().wait()
        return self._build(record)

    def release(self, device: Device) -> None:
        """The user stopped: stop its device, keep its state for the store, reuse its record."""
        record = self._records.pop(device, None)
        if record is None:
            return
        device.stop()
        if self.telemetry is not None:
            self.telemetry.stop(device)
        kept = self._kept.pop(device, None)
        if kept is not None:
            kept.close()
        self.counters.changed.discard(device)
        if self._handed_in is None:  # else its state went to the master with the hand-in
            self._take_update(device, record)
            self.counters.change.set()
        self._idle.append(record)
        if not self._returning:
            self._returning = True
            gevent.spawn_later(RETURN_AFTER_S, self._give_back_idle)

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Live devices by status and, for those busy with a deployment, by phase; a walk
        over every device, which yields as it goes (0.2 s at 500,000 devices). After the
        final hand-in, the fleet as it was handed in."""
        if self._handed_in is not None:
            return self._handed_in
        return self._count(list(self._records))

    def _count(
        self, devices: list[Device], *, yielding: bool = True, taking: bool = False
    ) -> tuple[Counter[str], Counter[str]]:
        """`taking`: also take the state the store lacks, in the same pass (the hand-in's walk
        over half a million devices costs seconds on a loaded machine; one pass, not two)."""
        by_status: Counter[str] = Counter()
        by_phase: Counter[str] = Counter()
        records = self._records
        for done, device in enumerate(devices, 1):
            if taking and device.unsent():
                record = records.get(device)
                if record is not None:  # else its user ended and its state went with it
                    self._take_update(device, record)
            by_status[seen_status(device)] += 1
            if device.phase != "idle":
                by_phase[device.phase] += 1
            if yielding and done % 5000 == 0:
                gevent.sleep(0)  # the Fleet JSON's walk during a run keeps the lag down
        return by_status, by_phase

    # -- messages ------------------------------------------------------------------------------

    def on_slice(self, environment: Any, msg: Any) -> None:
        data = msg.data
        if data.get("error"):
            error = LeaseRefused(data["error"])
            while self._waiters:
                self._waiters.popleft().set_exception(error)
            self._asking = False
            return
        if data.get("engine"):
            self._engine = data["engine"]
            self._config = engine_config(self._engine)
            overrides = tuple(tuple(pair) for pair in self._engine.get("traffic") or ())
            for name, document in data.get("profiles", {}).items():
                if name not in self._behaviours:
                    behaviour = Behaviour.from_profile(document)
                    traffic = behaviour.traffic.overridden(overrides)
                    self._behaviours[name] = dataclasses.replace(behaviour, traffic=traffic)
                if self.telemetry is not None:
                    self.telemetry.add_profile(name, document)
        for item in data["records"]:
            record = wire.record_from_wire(item)
            if self._waiters:
                self._waiters.popleft().set(record)
            else:
                self._idle.append(record)
        if data.get("last"):
            self._asking = False
            if self._waiters:
                self._ask_soon()

    def on_collect(self, environment: Any, msg: Any) -> None:
        """The run is stopping: stop every device, send all state to the master, final, and end
        the users (or, in a worker whose process ends with this stop, leave them to its exit).

        Requests on the wire are waited for (bounded): a final status the server takes in the
        last moment must reach the device's history before the state is taken. A device whose
        state the store already holds (its status and finished deployments went out as they
        changed) sends nothing again: at a million devices that is most of the fleet. The users
        are ended here, in chunks, because Locust's own stop spawns a greenlet per user (at
        500,000 users, gigabytes and minutes)."""
        began = time.monotonic()
        self._closed = True
        # The loops below do not yield: on a hub busy with answers coming back, each yield costs
        # tens of milliseconds (21 s for 500,000 devices), and the heartbeats go from a thread.
        held = list(self._records)  # a device that ends during the hand-in is still counted
        for device in held:
            device.stop()
        deadline = time.monotonic() + IN_FLIGHT_GRACE_S
        while IN_FLIGHT.count and time.monotonic() < deadline:
            gevent.sleep(0.02)
        on_the_wire, waited = IN_FLIGHT.count, time.monotonic()
        self._handed_in = self._count(held, yielding=False, taking=True)
        if self.telemetry is not None:
            self.telemetry.truth.flush()
        self.counters.changed.clear()
        sent = len(self._updates)
        taken = time.monotonic()
        worker = isinstance(environment.runner, WorkerRunner)
        if worker:
            # The stopped devices' last requests and the fleet as handed in reach the master
            # ahead of the final state (one connection keeps the order): once it has every
            # final state it has every figure, and need not wait for a periodic report.
            environment.runner._send_stats()
        self.flush(final=True)
        handed = time.monotonic()
        leave = worker and bool((msg.data or {}).get("quitting"))
        if leave:
            self._leave_users()
        else:
            self._end_users()
        logger.info(
            "hand-in of %d devices: %d updates sent %.1f s after the stop (%d requests still on "
            "the wire after %.1f s, state taken in %.1f s, sent in %.1f s), users %s %.1f s later",
            len(held),
            sent,
            handed - began,
            on_the_wire,
            waited - began,
            taken - waited,
            handed - taken,
            "left to the exit" if leave else "ended",
            time.monotonic() - handed,
        )

    def _leave_users(self) -> None:
        """Take the users out of Locust's group without ending them, and end the process at
        Locust's quit: a user ended while blocked in an exchange costs 0.2 to 0.8 ms (500,000
        of them per worker at a million devices), and the interpreter's teardown would end each
        left user the same way. Their devices are stopped, so a user that wakes ends itself."""
        group = self._environment.runner.user_greenlets
        self._left = self._other_users()  # held: a collected suspended greenlet is ended
        for user in self._left:
            group.discard(user)
        lifetime.exit_at_quit(self._environment)

    def _other_users(self) -> list[gevent.Greenlet]:
        here = gevent.getcurrent()  # a user that stopped the run ends with Locust's own stop
        return [g for g in self._environment.runner.user_greenlets if g is not here]

    def _end_users(self) -> None:
        users = self._other_users()
        for start in range(0, len(users), 5000):
            gevent.killall(users[start : start + 5000], block=True)
            # the dead leave Locust's group from hub callbacks: let them run, or Locust's stop
            # finds them still there and logs an error line for each (10,000 in a test)
            gevent.sleep(0)

    def flush(self, *, final: bool = False) -> None:
        """Send state updates of devices that changed and of devices given back."""
        for device in list(self.counters.changed):
            record = self._records.get(device)
            if record is not None:
                self._take_update(device, record)
        self.counters.changed.clear()
        updates, self._updates = self._updates, []
        for start in range(0, max(len(updates), 1), wire.CHUNK):
            chunk = updates[start : start + wire.CHUNK]
            last = start + wire.CHUNK >= len(updates)
            if not chunk and not final:
                return
            self._environment.runner.send_message(
                wire.STATES,
                {"updates": [wire.update_to_wire(u) for u in chunk], "final": final and last},
            )

    def start_flushing(self) -> None:
        self._handed_in = None  # a new swarm
        self._closed = False
        if self._flusher is None or self._flusher.dead:
            self._flusher = gevent.spawn(self._flush_forever)

    def stop_flushing(self) -> None:
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None

    # -- internals -----------------------------------------------------------------------------

    def _flush_forever(self) -> None:
        change = self.counters.change
        while True:
            change.wait()
            gevent.sleep(SEND_COALESCE_S)
            change.clear()
            self.flush()

    def _ask_soon(self) -> None:
        if not self._asking:
            self._asking = True
            gevent.spawn_later(COALESCE_S, self._ask)

    def _ask(self) -> None:
        # The devices built so far live as long as the run: out of the collector's sight, a
        # full collection no longer walks them (0.74 s over 3.9 million objects, measured).
        gc.freeze()
        more, restart = len(self._waiters), self._restart
        self._restart = False
        self._environment.runner.send_message(
            wire.LEASE, {"key": self._key, "more": more, "restart": restart}
        )

    def _give_back_idle(self) -> None:
        """Return idle devices (their state first) so that any worker may simulate them."""
        self._returning = False
        if not self._idle:
            return
        ids = [record.device_id for record in self._idle]
        self._idle.clear()
        self.flush()
        self._environment.runner.send_message(wire.RETURN, {"key": self._key, "ids": ids})

    def _build(self, record: DeviceRecord) -> Device:
        engine = self._engine
        transport = self._transport_for(record.profile, idle_timeout(engine))
        device = Device(
            record,
            self._behaviours[record.profile],
            transport,
            self._clock,
            config=self._config,
            listener=self._listener,
        )
        self._records[device] = record
        if transport.keeps_connections:
            self._kept[device] = transport
        if self.telemetry is not None:
            self.telemetry.start(device, engine, self._clock)
        return device

    def _transport_for(self, profile: str, timeout: float) -> GeventTransport:
        host = self._environment.host
        if timeout:
            return GeventTransport(self._environment, host, profile=profile, idle_timeout=timeout)
        shared = self._shared.get((host, profile))
        if shared is None:
            shared = self._shared[(host, profile)] = GeventTransport(
                self._environment, host, profile=profile
            )
        return shared

    def _take_update(self, device: Device, record: DeviceRecord) -> None:
        update = device.state_update()
        wire.apply_update(record, update)
        self._updates.append(update)
