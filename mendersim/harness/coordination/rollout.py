"""The rollout scenario: once the fleet is up, deploy to a share of it and time the rollout.

This is the official load-test procedure's question ("does a deployment to 10 % of the fleet
finish within one poll interval?") asked through the management API of the embedded server or of
a real one, with an artifact written for the fleet's device types.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent

from mendersim.artifact.writer import write_artifact
from mendersim.errors import ConfigError, MendersimError
from mendersim.harness.coordination.fleetview import FleetView
from mendersim.harness.reporting import stats
from mendersim.harness.reporting.failurelogs import read_failure_logs
from mendersim.mender_api.management import MenderApiError

logger = logging.getLogger(__name__)

FINAL_STATES = (
    "success",
    "failure",
    "already-installed",
    "noartifact",
    "aborted",
    "decommissioned",
)
WATCH_EVERY_S = 1.0
PAGE = 500


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    share: float
    artifact_size: int
    device_types: list[str]
    start_delay_s: float  # start even if not every device is accepted yet, this long after spawn
    identities: Callable[[], set[str]]  # identity keys of the simulated fleet


def targets_for(accepted_ids: list[str], share: float) -> list[str]:
    """The share of the accepted devices to deploy to: at least one, in the server's order."""
    if not accepted_ids:
        return []
    return sorted(accepted_ids)[: max(1, math.ceil(len(accepted_ids) * share))]


def identity_key(identity: dict[str, Any]) -> str:
    """An identity as the client sends it (sorted keys, compact): how the server tells devices."""
    return json.dumps(identity, sort_keys=True, separators=(",", ":"))


def accepted_fleet_ids(management: Any, fleet: set[str]) -> list[str]:
    """The server ids of the accepted devices whose identity is in `fleet`, page by page.

    A real server may hold devices that are not simulated: they are never deployment targets."""
    ids: list[str] = []
    page = 1
    while True:
        chunk = management.list_devices(status="accepted", page=page, per_page=PAGE)
        ids.extend(d["id"] for d in chunk if identity_key(d.get("identity_data", {})) in fleet)
        if len(chunk) < PAGE:
            return ids
        page += 1


def check_access(management: Any, host: str) -> None:
    """A management token the server refuses is told to the user now, in one line, not logged
    once the rollout has waited for the fleet."""
    try:
        management.count_devices("accepted")
    except MenderApiError as exc:
        if exc.status in (401, 403):
            raise ConfigError(
                "management token", f"refused by {host} (HTTP {exc.status}: {exc.message})"
            ) from None
        raise MendersimError(f"roll out: {host}: {exc}") from None


def finished_count(statistics: dict[str, Any]) -> int:
    return sum(int(statistics.get(state, 0) or 0) for state in FINAL_STATES)


class Rollout:
    def __init__(
        self,
        environment: Any,
        view: FleetView,
        plan: RolloutPlan,
        management: Callable[[], Any],
    ) -> None:
        self._environment = environment
        self._view = view
        self._plan = plan
        self._management = management
        self._greenlet: gevent.Greenlet | None = None
        self.deployment_id: str | None = None

    def start(self) -> None:
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def failure_logs(self) -> dict[str, Any] | None:
        """The failed devices' uploaded error lines, grouped (None before the deployment)."""
        if self.deployment_id is None:
            return None
        return read_failure_logs(self._management(), self.deployment_id)

    def _run(self) -> None:
        try:
            self._wait_for_fleet()
            self._deploy_and_watch()
        except MendersimError as exc:
            logger.error("rollout: %s", exc)

    def _wait_for_fleet(self) -> None:
        """Until every user's device is accepted, or the delay after spawning has passed."""
        runner = self._environment.runner
        while runner.state not in ("running",):
            gevent.sleep(0.5)
        deadline = time.monotonic() + self._plan.start_delay_s
        while time.monotonic() < deadline:
            snapshot = self._view.snapshot()
            if snapshot.users and snapshot.devices_by_status.get("accepted", 0) >= snapshot.users:
                return
            gevent.sleep(0.5)
        logger.info(
            "rollout: starting after %.0f s with part of the fleet accepted",
            self._plan.start_delay_s,
        )

    def _deploy_and_watch(self) -> None:
        management = self._management()
        accepted = accepted_fleet_ids(management, self._plan.identities())
        targets = targets_for(accepted, self._plan.share)
        if not targets:
            logger.error("rollout: no accepted device to deploy to")
            return
        name = f"mendersim-rollout-{int(time.time())}"
        with tempfile.TemporaryDirectory(prefix="mendersim-rollout-") as tmp:
            path = Path(tmp) / f"{name}.mender"
            write_artifact(
                path,
                name=name,
                device_types=self._plan.device_types,
                payload_size=self._plan.artifact_size,
            )
            management.upload_artifact(path)
        deployment_id = management.create_deployment(name, name, devices=targets)
        self.deployment_id = deployment_id
        started_wall, started = time.time(), time.monotonic()
        self._view.rollout.rollout_started_at = started_wall
        self._view.rollout.rollout_targets = len(targets)
        self._view.rollout.rollout_done = 0
        self._view.rollout.rollout_finished_s = None
        logger.info(
            "rollout: deployment %s of %s to %d of %d accepted devices",
            deployment_id,
            name,
            len(targets),
            len(accepted),
        )
        while True:
            done = finished_count(management.deployment_statistics(deployment_id))
            self._view.rollout.rollout_done = done
            if done >= len(targets):
                break
            gevent.sleep(WATCH_EVERY_S)
        seconds = time.monotonic() - started
        self._view.rollout.rollout_finished_s = seconds
        stats.measure(self._environment, stats.HARNESS, stats.ROLLOUT_DURATION, seconds * 1000.0)
        logger.info("rollout: all %d targets finished in %.1f s", len(targets), seconds)
