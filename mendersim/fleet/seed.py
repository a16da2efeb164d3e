"""Seeding a store from a fleet config: keys made on every core, rows committed in batches.

Identities are fixed by (seed, group, index), keys are fresh randomness. An interrupted seed
keeps every committed batch and no half row; seeding again adds exactly the missing devices. A
grown group gains devices; any other change to what was seeded is refused.
"""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mendersim.errors import MendersimError
from mendersim.fleet import keys
from mendersim.fleet.identity import IdentityGenerator, device_rng, kind_slots
from mendersim.fleet.model import compact_json
from mendersim.fleet.profiles import FleetConfig, Group
from mendersim.fleet.store import SeedStore
from mendersim.fleet.weighted import Weighted

log = logging.getLogger(__name__)

# Rough cost of one key in milliseconds: batches aim at about a second of work each, so the
# progress bar moves and an interrupt loses little.
_KEY_COST_MS = {"rsa2048": 50, "rsa3072": 190, "rsa4096": 600, "ecdsa-p256": 0.1, "ed25519": 0.1}
_MAX_BATCH = 2000


class SeedRefused(MendersimError):
    """The config changed in a way the existing store cannot follow."""


class SeedInterrupted(MendersimError):
    """SIGINT/SIGTERM during seeding; the store holds every batch committed so far."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class _Interrupt(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass(frozen=True, slots=True)
class SeedResult:
    total: int  # devices the config asks for
    already: int  # devices the store held before this run
    added: int
    seconds: float
    # run-time settings the config changed in an existing store (devices stay as they are)
    settings_changed: tuple[str, ...] = ()


# Fleet config fields that only steer runs: a store follows a change without new devices.
RUN_TIME_SETTINGS = ("server_url", "tenant_token", "poll_interval", "logging")


def device_id(profile: str, group: int, first_group_of_profile: bool, index: int) -> str:
    """`automotive-000042`; a profile's later groups add their index: `automotive-3-000042`."""
    return f"{profile}-{index:06d}" if first_group_of_profile else f"{profile}-{group}-{index:06d}"


def _weighted(choices: Any) -> Weighted:
    """A profile's weighted list, or a bare value, as a Weighted choice."""
    if not isinstance(choices, list):
        return Weighted([choices], [1.0])
    return Weighted([c["value"] for c in choices], [c["weight"] for c in choices])


@dataclass(frozen=True, slots=True)
class _GroupPlan:
    """What building one group's devices needs, compiled once per worker."""

    group: Group
    first_of_profile: bool  # the profile's first group keeps the short device ids
    identity: IdentityGenerator
    key_types: Weighted
    device_types: Weighted
    inventory: list[tuple[str, Weighted]]
    artifact_name: str


class DeviceFactory:
    """Builds seeded device rows (store.DEVICE_COLUMNS order); one per worker process."""

    def __init__(self, profiles: dict[str, dict[str, Any]], groups: Sequence[Group], seed: int):
        self._seed = seed
        self._plans: dict[int, _GroupPlan] = {}
        slots = kind_slots([profiles[g.profile]["identity"]["kind"] for g in groups])
        first_of_profile: dict[str, int] = {}
        for group, slot in zip(groups, slots, strict=True):
            profile = profiles[group.profile]
            first_of_profile.setdefault(group.profile, group.index)
            self._plans[group.index] = _GroupPlan(
                group,
                first_of_profile[group.profile] == group.index,
                IdentityGenerator(profile["identity"], seed=seed, slot=slot),
                _weighted(profile["key_type"]),
                _weighted(profile["device_types"]),
                [(name, _weighted(c)) for name, c in sorted(profile["inventory"].items())],
                profile["artifact_name"],
            )

    def row(self, group_index: int, index: int) -> tuple[Any, ...]:
        plan = self._plans[group_index]
        rng = device_rng(self._seed, group_index, index)
        key_type = plan.key_types.pick(rng)
        device_type = plan.device_types.pick(rng)
        id_data, manufacturer = plan.identity.make(index, rng, device_type)
        attributes = {"manufacturer": manufacturer}
        for name, choice in plan.inventory:
            attributes[name] = choice.pick(rng)
        return (
            device_id(plan.group.profile, group_index, plan.first_of_profile, index),
            group_index,
            index,
            plan.group.profile,
            key_type,
            compact_json(id_data),
            keys.new_private_pem(key_type),
            "",  # the public key is derived from the private key when sent
            device_type,
            plan.artifact_name,
            compact_json(attributes),
            time.time(),
        )

    def rows(self, group_index: int, start: int, stop: int) -> list[tuple[Any, ...]]:
        return [self.row(group_index, i) for i in range(start, stop)]


_factory: DeviceFactory | None = None


def _init_worker(profiles: dict[str, dict[str, Any]], groups: Sequence[Group], seed: int) -> None:
    """Workers leave interrupts to the parent, which tears the pool down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _factory
    _factory = DeviceFactory(profiles, groups, seed)


def _make_batch(task: tuple[int, int, int]) -> list[tuple[Any, ...]]:
    assert _factory is not None
    return _factory.rows(*task)


def _batch_size(profile: dict[str, Any]) -> int:
    key_types = _weighted(profile["key_type"]).values
    cost = max(_KEY_COST_MS[k] for k in key_types)
    return max(4, min(_MAX_BATCH, int(1000 / cost)))


def _tasks(fleet: FleetConfig, seeded: dict[int, set[int]]) -> list[tuple[int, int, int]]:
    """Batches (group, start, stop) covering exactly the devices the store lacks."""
    tasks = []
    for group in fleet.groups:
        have = seeded.get(group.index, set())
        size = _batch_size(fleet.profiles[group.profile])
        start = None
        for i in range(group.count + 1):
            missing = i < group.count and i not in have
            if missing and start is None:
                start = i
            if start is not None and (not missing or i - start == size):
                tasks.append((group.index, start, i))
                start = i if missing else None
    return tasks


def _refusal(store: SeedStore, fleet: FleetConfig) -> str | None:
    """Why the store cannot follow the changed config, or None when it can."""
    meta = store.meta()
    if meta["seed"] != fleet.seed:
        return f"the fleet seed changed ({meta['seed']} → {fleet.seed})"
    stored_profiles = store.profiles()
    for name, document in fleet.profiles.items():
        if name in stored_profiles and json.loads(json.dumps(document)) != stored_profiles[name]:
            return f"profile {name!r} changed since the store was seeded"
    old_groups = meta["fleet_config"]["groups"]
    for i, old in enumerate(old_groups):
        if i >= len(fleet.groups):
            return f"groups[{i}] ({old['profile']}, {old['count']} devices) was removed"
        new = fleet.groups[i]
        if new.profile != old["profile"]:
            return f"groups[{i}].profile changed from {old['profile']!r} to {new.profile!r}"
        if new.count < old["count"]:
            return f"groups[{i}].count shrank from {old['count']} to {new.count}"
    return None


def _open_or_create(db: Path, fleet: FleetConfig) -> tuple[SeedStore, tuple[str, ...]]:
    meta = {"seed": fleet.seed, "fleet_config": fleet.document, "created_at": time.time()}
    if not db.exists():
        store = SeedStore.create(db, meta)
        with store.transaction():
            store.set_profiles(fleet.profiles)
        log.info("created seed store %s", db)
        return store, ()
    store = SeedStore.open(db)
    reason = _refusal(store, fleet)
    if reason:
        store.close()
        log.info("seeding %s refused: %s", db, reason)
        raise SeedRefused(f"{db}: refused: {reason}; seed the changed fleet into a new --db")
    before = store.fleet_config()
    changed = tuple(k for k in RUN_TIME_SETTINGS if before.get(k) != fleet.document.get(k))
    if changed:
        log.info("%s: run-time settings changed: %s", db, ", ".join(changed))
    with store.transaction():
        store.set_meta({"fleet_config": fleet.document})
        store.set_profiles(fleet.profiles)
    return store, changed


@contextmanager
def _interrupts_raise() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise _Interrupt(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def _interrupts_ignored() -> Iterator[None]:
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def seed_store(
    fleet: FleetConfig, db: str | Path, *, workers: int | None = None, progress: bool = True
) -> SeedResult:
    """Bring the store at `db` up to the fleet config; see the module docstring."""
    db = Path(db)
    started = time.monotonic()
    total = sum(g.count for g in fleet.groups)
    with _only_seeder(db):
        return _seed_locked(fleet, db, workers, progress, started, total)


@contextmanager
def _only_seeder(db: Path) -> Iterator[None]:
    """One seeding process per store: a second one stops at once with a clear line."""
    lock_path = db.with_name(db.name + ".lock")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        raise MendersimError(
            f"{lock_path}: cannot create the seeding lock: {exc.strerror}"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SeedRefused(
                f"{db}: another `mendersim seed` is writing this store; let it finish"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a waiter)


def _seed_locked(
    fleet: FleetConfig,
    db: Path,
    workers: int | None,
    progress: bool,
    started: float,
    total: int,
) -> SeedResult:
    store, changed = _open_or_create(db, fleet)
    try:
        seeded = store.seeded_indices()
        already = sum(len(v) for v in seeded.values())
        for group in fleet.groups:
            have = len(seeded.get(group.index, ()))
            log.info(
                "group %d: profile %s, %d devices (%d already stored)",
                group.index,
                group.profile,
                group.count,
                have,
            )
        if already:
            log.info("resuming %s: %d of %d devices already stored", db, already, total)
        tasks = _tasks(fleet, seeded)
        if tasks:
            store.defer_identity_index()
        added = _run_pool(store, fleet, tasks, workers or os.cpu_count() or 1, progress, already)
        store.build_identity_index()
    finally:
        store.close()
    seconds = time.monotonic() - started
    log.info("seeded %s: %d devices added, %d in total, %.1f s", db, added, total, seconds)
    return SeedResult(total, already, added, seconds, changed)


def _run_pool(
    store: SeedStore,
    fleet: FleetConfig,
    tasks: list[tuple[int, int, int]],
    workers: int,
    progress: bool,
    already: int,
) -> int:
    missing = sum(stop - start for _, start, stop in tasks)
    if not missing:
        return 0
    added = 0
    bar = tqdm(
        total=missing,
        unit="dev",
        file=sys.stderr,
        disable=not (progress and sys.stderr.isatty()),
        desc="seeding",
    )
    pool = None
    try:
        with _interrupts_raise():
            pool = multiprocessing.Pool(
                min(workers, len(tasks)),
                initializer=_init_worker,
                initargs=(fleet.profiles, fleet.groups, fleet.seed),
            )
            for rows in pool.imap(_make_batch, tasks):
                store.insert_devices(rows)
                added += len(rows)
                bar.update(len(rows))
    except _Interrupt as interrupt:
        with _interrupts_ignored():
            if pool is not None:
                pool.terminate()
                pool.join()
            bar.close()
        name = signal.Signals(interrupt.signum).name
        stored = already + added
        total = stored + missing - added
        log.info("seeding interrupted by %s: %d of %d devices stored", name, stored, total)
        raise SeedInterrupted(
            interrupt.signum,
            f"seeding interrupted by {name}: {stored} of {total} devices stored;"
            " run the same command again to complete it",
        ) from None
    pool.close()
    pool.join()
    bar.close()
    return added
