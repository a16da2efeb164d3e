"""A simulated Mender device: authentication, inventory, deployment polling and updates.

The device runs as the C++ client's daemon does: authenticate on first need, send inventory,
poll for deployments on its own timer (spread so devices do not fire together), back off after
failures, and live each deployment through the update state machine (deployment.py). It knows
nothing of Locust: everything goes through a Transport and a Clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from mendersim.device import decide, steps
from mendersim.device.auth import AUTH_PATH, auth_request
from mendersim.device.backoff import backoff_interval
from mendersim.device.behaviour import Behaviour
from mendersim.device.churn import InventoryChurn
from mendersim.device.controlmap import ControlMap
from mendersim.device.deployment import DEPLOYMENT_PHASES, Deployment
from mendersim.device.deviceconfig import DeviceConfiguration
from mendersim.device.deviceconnect import PING_EVERY_S, DeviceConnect
from mendersim.device.events import DeviceListener
from mendersim.device.inventory import INVENTORY_PATH, inventory_body
from mendersim.device.shaping import ShapedTransport
from mendersim.device.transport import Clock, Response, Transport, TransportError
from mendersim.fleet.model import DeploymentRecord, DeviceRecord, DeviceStateUpdate

log = logging.getLogger(__name__)

NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
NEXT_V1 = "/api/devices/v1/deployments/device/deployments/next"
JSON = "application/json"

# What `Device.phase` can be. The first four are the daemon's own business; the others belong to
# a deployment in progress (what the Fleet tab counts as deployments by state).
PHASES = ("idle", "authenticating", "inventory", "polling", *DEPLOYMENT_PHASES)

_SILENT = DeviceListener()
_FAILED, _NOTHING, _DEPLOYED = "failed", "nothing", "deployed"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    tenant_token: str = ""
    time_scale: float = 1.0  # multiplies every timer: intervals, install/reboot durations, backoffs
    poll_interval: float | None = None  # overrides the profile's update_poll (seconds, unscaled)
    seed: int = 0  # failure decisions deterministic under (seed, device_id, deployment id)
    start_spread: float | None = None  # first poll within [0, this) s (scaled); None = one interval
    deviceconnect_ping: float = PING_EVERY_S  # real seconds: keepalives are not time-scaled


class _Found:
    """A deployment offered by the server."""

    __slots__ = ("artifact_name", "control_map", "id", "uri")

    def __init__(
        self, deployment_id: str, artifact_name: str, uri: str, control_map: ControlMap | None
    ) -> None:
        self.id = deployment_id
        self.artifact_name = artifact_name
        self.uri = uri
        self.control_map = control_map


class Device:
    """One device; small (slots, PEM keys, no random generator) so 100,000 fit in a process."""

    __slots__ = (
        "_accepted_in_run",
        "_auth_since",
        "_churn",
        "_configuration",
        "_deviceconnect",
        "_down_until",
        "_history",
        "_inventory_base",
        "_inventory_failures",
        "_inventory_hash",
        "_inventory_sent",
        "_poll_failures",
        "_rebooted",
        "_stopped",
        "_token",
        "_use_v1",
        "behaviour",
        "clock",
        "config",
        "listener",
        "phase",
        "record",
        "status",
        "transport",
    )

    def __init__(
        self,
        record: DeviceRecord,
        behaviour: Behaviour,
        transport: Transport,
        clock: Clock,
        *,
        config: EngineConfig,
        listener: DeviceListener | None = None,
    ) -> None:
        self.record = record
        self.behaviour = behaviour
        if behaviour.network.shapes:
            transport = ShapedTransport(
                transport,
                behaviour.network,
                clock,
                device_id=record.device_id,
                seed=config.seed,
                outage_scale=config.time_scale,
            )
        self.transport = transport
        self.clock = clock
        self.config = config
        self.listener = listener or _SILENT
        self.status = record.status
        self.phase = "idle"
        self._token: str | None = None
        self._inventory_hash: int | None = None
        self._inventory_base: int | None = None  # the last sent body without churned values
        self._inventory_sent = False
        self._churn: InventoryChurn | None = None
        self._configuration: DeviceConfiguration | None = None
        self._deviceconnect: DeviceConnect | None = None
        self._use_v1 = False
        self._poll_failures = 0
        self._inventory_failures = 0
        self._auth_since: float | None = None
        self._accepted_in_run = False
        self._history: list[DeploymentRecord] = []
        self._stopped = False
        self._down_until = 0.0  # clock time a reboot from outside run() ends
        self._rebooted = False

    # The harness's side.
    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def accepted_in_run(self) -> bool:
        """Whether the server accepted this device since it started (not just the store's say)."""
        return self._accepted_in_run

    @property
    def deploying(self) -> bool:
        """Whether a deployment is in progress (its state is `phase`)."""
        return self.phase in DEPLOYMENT_PHASES

    @property
    def deviceconnect(self) -> DeviceConnect | None:
        """The deviceconnect link, when the device runs mender-connect."""
        return self._deviceconnect

    def stop(self) -> None:
        """Ask the device to end; run() returns at its next step."""
        self._stopped = True
        if self._deviceconnect is not None:
            self._deviceconnect.stop()

    def unsent(self) -> bool:
        """Whether the device holds state the store has not taken: a status other than the
        record's, a finished deployment not handed out, or one in progress (its record may
        already name the new artifact). A token is not state: the store keeps none."""
        return bool(self._history or self.status != self.record.status or self.deploying)

    def state_update(self) -> DeviceStateUpdate:
        """The device's state for the store, with the history entries not handed out yet."""
        history, self._history = self._history, []
        record = self.record
        return DeviceStateUpdate(
            device_id=record.device_id,
            status=self.status,
            artifact_name=record.artifact_name,
            partition=record.partition,
            provides=dict(record.provides),
            history=history,
        )

    def run(self, admit: Callable[[], None] | None = None) -> None:
        """The device's life: start-up spread, then inventory and polling until stop().

        `admit`, when given, is waited on after the spread, before the first request: the
        harness's pacing of start-ups to what the process can keep."""
        scale = self.config.time_scale
        poll_every = self.poll_interval()
        spread = poll_every if self.config.start_spread is None else self.config.start_spread
        self._sleep(spread * scale * self._fraction("start"))
        if admit is not None and not self._stopped:
            admit()
        behaviour = self.behaviour
        if behaviour.churn and behaviour.traffic.churn:
            self._churn = InventoryChurn(
                behaviour.churn,
                self.record.inventory,
                seed=self.config.seed,
                device_id=self.record.device_id,
                now=self.clock.now(),
            )
        if behaviour.traffic.deviceconfig:
            self._configuration = DeviceConfiguration()
        if behaviour.traffic.deviceconnect:
            self._deviceconnect = DeviceConnect(self)
        next_inventory = next_poll = self.clock.now()
        while not self._stopped:
            now = self.clock.now()
            if now < self._down_until:  # rebooting on a command: no request until it is back
                self._sleep(self._down_until - now)
                continue
            if self._rebooted:  # back from that reboot: inventory and a poll, as at start-up
                self._rebooted = False
                next_inventory = next_poll = now
            if now >= next_inventory:
                next_inventory = now + self._inventory_cycle()
                # The add-on reports from an inventory script: only with a token, as it does.
                if self._configuration is not None and self._token is not None:
                    self._configuration.cycle(self.call, lambda: self._token)
            if self._stopped:
                break
            if now >= next_poll:
                wait, outcome = self._poll_cycle()
                next_poll = self.clock.now() + wait
                # Inventory follows every deployment, and the first successful poll when none
                # was sent yet (a device accepted since start-up), as the client does.
                if outcome == _DEPLOYED or (outcome == _NOTHING and not self._inventory_sent):
                    next_inventory = self.clock.now()
                    continue
            self._sleep(min(next_poll, next_inventory) - self.clock.now())
        if self._deviceconnect is not None:
            self._deviceconnect.stop()
        self.set_phase("idle")

    # What deployments use.
    def call(self, step: str, method: str, url: str, body: bytes | None = None) -> Response:
        """An authenticated API request: on a 401, one re-authentication and one retry.

        When authentication itself fails, its answer is returned (401, 429, ...)."""
        if self._token is None and (refused := self._authenticate()) is not None:
            return refused
        response = self._send(step, method, url, body)
        if response.status != 401:
            return response
        log.debug("device %s: 401 on %s, authenticating again", self.record.device_id, step)
        self._token = None
        if (refused := self._authenticate()) is not None:
            return refused
        return self._send(step, method, url, body)

    def _send(self, step: str, method: str, url: str, body: bytes | None) -> Response:
        headers = {"Authorization": f"Bearer {self._token}"}
        if body is not None:
            headers["Content-Type"] = JSON
        return self.transport.request(step, method, url, headers=headers, body=body)

    def reboot(self, seconds: float) -> None:
        """A reboot ordered from outside run() (an IoT platform's command), called from another
        greenlet while run() is idle: the device's own reboot (token lost, downtime counted),
        and run() makes no request until it is over, then sends inventory and polls."""
        self._down_until = self.clock.now() + seconds * self.config.time_scale
        self._rebooted = True
        self._inventory_hash = None  # the client's cache does not survive its restart
        self.restart("reboot", seconds)

    def restart(self, kind: str, seconds: float) -> None:
        """The device is down (no requests) for `seconds` (unscaled) and loses its token."""
        seconds *= self.config.time_scale
        self._token = None
        link = self._deviceconnect
        if link is not None:
            link.down()
        self.clock.sleep(seconds)
        if link is not None and not self._stopped:
            link.up()
        if kind == "reboot" and self._churn is not None:
            self._churn.rebooted(self.clock.now())
        self.listener.downtime(self, kind, seconds)

    def set_phase(self, phase: str) -> None:
        old = self.phase
        if old != phase:
            self.phase = phase
            self.listener.phase_changed(self, old, phase)

    def retry_after(self, response: Response | None) -> float | None:
        """Seconds a 429's Retry-After asks for (delta seconds or an HTTP date), else None.

        Not scaled by time_scale: it is the server's demand, in its seconds."""
        if response is None or response.status != 429:
            return None
        value = (response.header("retry-after") or "").strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - self.clock.wall())
        except (TypeError, ValueError):
            return None

    # Internals.
    def _authenticate(self) -> Response | None:
        """Get a token; None on success, else the server's answer (TransportError propagates)."""
        phase = self.phase
        self.set_phase("authenticating")
        now = self.clock.now()
        if self._auth_since is None:
            self._auth_since = now
        body, headers = auth_request(
            self.record, self.config.tenant_token, self.behaviour.traffic.tier
        )
        try:
            response = self.transport.request(
                steps.AUTH, "POST", AUTH_PATH, headers=headers, body=body
            )
        finally:
            self.set_phase(phase)
        if response.status == 200 and response.body:
            self._token = response.body.decode("ascii", "replace").strip()
            self._inventory_hash = None  # the client clears its inventory cache on re-auth
            if self._deviceconnect is not None:  # mender-connect hears of the new token
                self._deviceconnect.token_changed(self._token)
            if not self._accepted_in_run:
                self._accepted_in_run = True
                log.info(
                    "device %s: accepted after %.1f s",
                    self.record.device_id,
                    now - self._auth_since,
                )
                self.listener.accepted(self, now - self._auth_since)
            self.status = "accepted"
            self._auth_since = None
            return None
        if response.status == 401:
            # Refused after this server accepted it: rejected (or decommissioned), and it stays
            # so at every refusal after; refused before any acceptance: pending.
            status = "rejected" if self.status in ("accepted", "rejected") else "pending"
            if status != self.status:
                log.info("device %s: authentication refused, now %s", self.record.device_id, status)
                self.status = status
                self.listener.status_changed(self, status)
        else:
            log.debug(
                "device %s: authentication answered %d", self.record.device_id, response.status
            )
        return response

    def poll_interval(self) -> float:
        return self.config.poll_interval or self.behaviour.update_poll

    def _fraction(self, purpose: str) -> float:
        return decide.fraction(self.config.seed, self.record.device_id, purpose)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.set_phase("idle")
            self.clock.sleep(seconds)

    def _failure_wait(self, attempt: int, response: Response | None, normal: float) -> float:
        """The client's wait after a failed poll or inventory: Retry-After, backoff, or normal."""
        retry_after = self.retry_after(response)
        if retry_after is not None:
            return retry_after
        interval = backoff_interval(attempt, self.behaviour.retry_poll)
        return (normal if interval is None else interval) * self.config.time_scale

    def _inventory_cycle(self) -> float:
        """Send inventory unless unchanged; the seconds until the next attempt."""
        normal = self.behaviour.inventory_poll
        base = inventory_body(self.record)
        body = base
        if self._churn is not None:
            churned = self._churn.attributes(self.clock.now(), self.config.time_scale)
            body = inventory_body(self.record, churned)
        digest, base_digest = hash(body), hash(base)
        if digest == self._inventory_hash:
            log.debug("device %s: inventory data unchanged, not submitting", self.record.device_id)
            return normal * self.config.time_scale
        # A PUT that only churned attributes made necessary has its own statistics row.
        churn_only = self._inventory_hash is not None and base_digest == self._inventory_base
        step = steps.INVENTORY_CHURN if churn_only else steps.INVENTORY
        self.set_phase("inventory")
        response: Response | None = None
        try:
            response = self.call(step, "PUT", INVENTORY_PATH, body)
        except TransportError as exc:
            log.debug("device %s: inventory failed: %s", self.record.device_id, exc.kind)
        if response is not None and response.status == 200:
            self._inventory_hash, self._inventory_base = digest, base_digest
            self._inventory_sent = True
            self._inventory_failures = 0
            return normal * self.config.time_scale
        self._inventory_failures += 1
        return self._failure_wait(self._inventory_failures, response, normal)

    def _poll_cycle(self) -> tuple[float, str]:
        """Poll once and live the deployment found; the wait until the next poll, and what
        happened (failed, nothing, deployed)."""
        normal = self.poll_interval()
        self.set_phase("polling")
        response: Response | None = None
        try:
            response = self._poll()
            found = self._parse_deployment(response) if response.status == 200 else None
        except TransportError as exc:
            log.debug("device %s: poll failed: %s", self.record.device_id, exc.kind)
            found = None
        except ValueError as exc:
            log.info("device %s: error in API response: %s", self.record.device_id, exc)
            response, found = None, None
        if response is None or response.status not in (200, 204):
            self._poll_failures += 1
            return self._failure_wait(self._poll_failures, response, normal), _FAILED
        self._poll_failures = 0
        if found is None:
            log.debug("device %s: no update available", self.record.device_id)
            return normal * self.config.time_scale, _NOTHING
        self._deploy(found)
        return normal * self.config.time_scale, _DEPLOYED

    def _poll(self) -> Response:
        record = self.record
        if not self._use_v1:
            provides = {
                **record.provides,
                "artifact_name": record.artifact_name,
                "device_type": record.device_type,
            }
            body = json.dumps(
                {
                    "device_provides": provides,
                    "update_control_map": self.behaviour.traffic.update_control_map,
                },
                separators=(",", ":"),
            ).encode()
            response = self.call(steps.NEXT, "POST", NEXT_V2, body)
            if response.status != 404:
                return response
            log.debug("device %s: v2 deployments API absent, using v1", record.device_id)
            self._use_v1 = True
        query = urlencode(
            {"artifact_name": record.artifact_name, "device_type": record.device_type}
        )
        return self.call(steps.NEXT, "GET", f"{NEXT_V1}?{query}")

    def _deploy(self, found: _Found) -> None:
        started = self.clock.now()
        device_id = self.record.device_id
        deployment = Deployment(self, found.id, found.artifact_name, found.uri)
        deployment.control_map = found.control_map
        if found.artifact_name == self.record.artifact_name:
            log.info(
                "device %s: deployment %s: %s already installed",
                device_id,
                found.id,
                found.artifact_name,
            )
            deployment.report("already-installed", retry=True)
            entry = deployment.record
            entry.finished, entry.result = self.clock.wall(), "already-installed"
        else:
            log.info(
                "device %s: deployment %s of %s starts, outcome: %s",
                device_id,
                found.id,
                found.artifact_name,
                deployment.failure or "success",
            )
            entry = deployment.run()
            if entry is None:
                return
            if entry.result == "success" and self._churn is not None:
                self._churn.updated(found.id)
        self._history.append(entry)
        log.info("device %s: deployment %s ended: %s", device_id, found.id, entry.result)
        self.listener.deployment_finished(self, entry, self.clock.now() - started)

    def _parse_deployment(self, response: Response) -> _Found:
        """The deployment in a 200 answer to deployments/next; ValueError when malformed (a
        control map the Go client refuses included, when maps are honoured)."""
        try:
            data = json.loads(response.body)
            artifact = data["artifact"]
            deployment_id = str(data["id"])
            found = _Found(
                deployment_id,
                str(artifact["artifact_name"]),
                str(artifact["source"]["uri"]),
                None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"deployments/next answer without {exc}") from None
        raw_map = data.get("update_control_map")
        if raw_map is not None and self.behaviour.traffic.update_control_map:
            found.control_map = ControlMap.parse(
                raw_map, deployment_id, self.clock.now(), self.control_map_lifetime()
            )
        return found

    def control_map_lifetime(self) -> float:
        """UpdateControlMapExpirationTimeSeconds: twice the poll interval (scaled); the map is
        fetched again at half of it."""
        return 2 * self.poll_interval() * self.config.time_scale
