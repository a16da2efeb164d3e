"""The server's in-memory model and its rules: devices and auth sets, inventory, artifacts,
deployments and per-device deployment states.

No HTTP here: handlers translate requests into these calls and `StateError`s into answers, so the
rules (acceptance, already-installed, noartifact, conflicting data, abort) read in one place.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FINAL_STATUSES = frozenset(
    {"success", "failure", "already-installed", "noartifact", "aborted", "decommissioned"}
)
DEVICE_SETTABLE_STATUSES = frozenset(
    {
        "downloading",
        "installing",
        "rebooting",
        "success",
        "failure",
        "already-installed",
        "pause_before_installing",
        "pause_before_rebooting",
        "pause_before_committing",
    }
)
STATISTICS_KEYS = (
    "success",
    "pending",
    "failure",
    "downloading",
    "installing",
    "rebooting",
    "noartifact",
    "already-installed",
    "aborted",
    "pause_before_installing",
    "pause_before_rebooting",
    "pause_before_committing",
)
ACCEPTANCE_MODES = ("auto", "preauth", "manual")
DEVICE_STATUSES = ("pending", "accepted", "rejected", "preauthorized", "noauth")


def rfc3339(ts: float) -> str:
    """Timestamps as Mender writes them (UTC, `Z`)."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


class StateError(Exception):
    """A request the rules refuse; `status` is the HTTP code Mender answers with."""

    status = 400

    def __init__(self, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body = body


class NotFound(StateError):
    status = 404


class Conflict(StateError):
    status = 409


class Unprocessable(StateError):
    status = 422


@dataclass(slots=True)
class AuthSet:
    id: str
    device_id: str
    pubkey: str
    status: str  # pending | accepted | rejected | preauthorized
    ts: float


@dataclass(slots=True)
class Device:
    id: str
    identity: dict[str, Any]
    id_data: str  # canonical (sorted keys, compact) identity, the lookup key
    status: str
    created: float
    updated: float
    auth_sets: list[AuthSet] = field(default_factory=list)
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → value/description
    inventory_updated: float | None = None
    group: str | None = None
    tenant: str | None = None
    check_in: float | None = None


@dataclass(slots=True)
class Artifact:
    id: str
    name: str
    description: str
    device_types: list[str]
    provides: dict[str, str]
    depends: dict[str, Any]
    update_type: str
    signed: bool
    size: int
    modified: float
    filename: str  # in the store's directory
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class DeviceDeployment:
    deployment_id: str
    device_id: str
    status: str = "pending"
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    artifact_id: str | None = None
    reported_artifact: str | None = None  # what the device said when it was handed the artifact
    reported_type: str | None = None
    substate: str | None = None
    log: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class Deployment:
    id: str
    name: str
    artifact_name: str
    created: float
    group: str | None = None
    force: bool = False
    finished: float | None = None
    # Enterprise's `update_control_map` as created or patched (`priority`, `states`), or None.
    update_control_map: dict[str, Any] | None = None
    devices: dict[str, DeviceDeployment] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)

    @property
    def status(self) -> str:
        if self.finished is not None:
            return "finished"
        return "pending" if self.counts["pending"] == len(self.devices) else "inprogress"


@dataclass(slots=True)
class NextAnswer:
    """What `deployments/next` hands out: the device deployment and its artifact, or nothing."""

    device_deployment: DeviceDeployment
    artifact: Artifact


class ServerState:
    def __init__(self, acceptance: str = "auto", max_devices: int | None = None) -> None:
        self.acceptance = acceptance
        self.max_devices = max_devices
        self.devices: dict[str, Device] = {}
        self.by_id_data: dict[str, Device] = {}
        self.artifacts: dict[str, Artifact] = {}
        self.deployments: dict[str, Deployment] = {}
        self.active: dict[str, list[DeviceDeployment]] = {}  # device id → unfinished, oldest first
        self.device_counts: Counter = Counter()
        self.dd_counts: Counter = Counter()
        # What changed since the last save (persistence clears these).
        self.dirty_devices: set[str] = set()
        self.dirty_artifacts: set[str] = set()
        self.dirty_deployments: set[str] = set()
        self.dirty_device_deployments: set[tuple[str, str]] = set()

    # ---- devices and authentication -------------------------------------------------------

    def _refresh_status(self, device: Device, now: float) -> None:
        statuses = {a.status for a in device.auth_sets}
        for candidate in ("accepted", "preauthorized", "pending", "rejected"):
            if candidate in statuses:
                break
        else:
            candidate = "noauth"
        if candidate != device.status:
            self.device_counts[device.status] -= 1
            self.device_counts[candidate] += 1
            device.status = candidate
            device.updated = now
        self.dirty_devices.add(device.id)

    def _new_device(self, identity: dict[str, Any], id_data: str, now: float) -> Device:
        device = Device(str(uuid.uuid4()), identity, id_data, "noauth", now, now)
        self.devices[device.id] = device
        self.by_id_data[id_data] = device
        self.device_counts["noauth"] += 1
        return device

    def _limit_reached(self) -> bool:
        return self.max_devices is not None and self.device_counts["accepted"] >= self.max_devices

    def _accept(self, device: Device, auth: AuthSet) -> None:
        """Mender keeps one accepted auth set per device: accepting one rejects the others."""
        for other in device.auth_sets:
            if other is not auth and other.status == "accepted":
                other.status = "rejected"
        auth.status = "accepted"

    def authenticate(
        self, identity: dict[str, Any], id_data: str, pubkey: str, tenant: str | None
    ) -> tuple[str, Device]:
        """Apply an auth request with a verified signature; returns (outcome, device), outcome
        being `accepted`, `pending`, `rejected` or `limit` (only `accepted` gets a token)."""
        now = time.time()
        device = self.by_id_data.get(id_data) or self._new_device(identity, id_data, now)
        device.tenant = tenant
        auth = next((a for a in device.auth_sets if a.pubkey == pubkey), None)
        if auth is None:
            auth = AuthSet(str(uuid.uuid4()), device.id, pubkey, "pending", now)
            device.auth_sets.append(auth)
        outcome = auth.status
        if auth.status == "preauthorized" or (
            auth.status == "pending" and self.acceptance == "auto"
        ):
            if device.status == "accepted" or not self._limit_reached():
                self._accept(device, auth)
                outcome = "accepted"
            else:
                outcome = "limit"
        self._refresh_status(device, now)
        if outcome == "accepted":
            device.check_in = now
        return outcome, device

    def set_auth_status(self, device_id: str, auth_id: str, status: str) -> None:
        device = self.devices.get(device_id)
        if device is None:
            raise NotFound("device not found")
        auth = next((a for a in device.auth_sets if a.id == auth_id), None)
        if auth is None:
            raise NotFound("authentication set not found")
        if status not in ("accepted", "rejected"):
            raise StateError(f"status must be accepted or rejected, not {status!r}")
        if status == "accepted" and auth.status != "accepted":
            if device.status != "accepted" and self._limit_reached():
                raise Unprocessable("maximum number of accepted devices reached")
            self._accept(device, auth)
        else:
            auth.status = status
        self._refresh_status(device, time.time())

    def preauthorize(self, identity: dict[str, Any], id_data: str, pubkey: str) -> Device:
        existing = self.by_id_data.get(id_data)
        if existing is not None:
            raise Conflict("device already exists", body=self.device_view(existing))
        now = time.time()
        device = self._new_device(identity, id_data, now)
        device.auth_sets.append(AuthSet(str(uuid.uuid4()), device.id, pubkey, "preauthorized", now))
        self._refresh_status(device, now)
        return device

    def accepted_device(self, device_id: str | None) -> Device | None:
        """The device a valid token names, if it is still accepted (rejection revokes tokens)."""
        device = self.devices.get(device_id) if device_id else None
        return device if device is not None and device.status == "accepted" else None

    def device_view(self, device: Device) -> dict[str, Any]:
        """The devauth v2 `Device` shape."""
        view: dict[str, Any] = {
            "id": device.id,
            "identity_data": device.identity,
            "status": device.status,
            "created_ts": rfc3339(device.created),
            "updated_ts": rfc3339(device.updated),
            "auth_sets": [
                {
                    "id": a.id,
                    "device_id": a.device_id,
                    "identity_data": device.identity,
                    "pubkey": a.pubkey,
                    "status": a.status,
                    "ts": rfc3339(a.ts),
                }
                for a in device.auth_sets
            ],
            "decommissioning": False,
        }
        if device.check_in is not None:
            view["check_in_time"] = rfc3339(device.check_in)
        return view

    # ---- inventory ---------------------------------------------------------------------------

    def set_inventory(
        self, device: Device, attributes: dict[str, dict[str, Any]], *, replace: bool
    ) -> None:
        """PUT replaces the device-reported (inventory scope) attributes, PATCH upserts them."""
        if replace:
            device.inventory = dict(attributes)
        else:
            device.inventory.update(attributes)
        device.inventory_updated = time.time()
        self.dirty_devices.add(device.id)

    def assign_group(self, device_id: str, group: str) -> None:
        device = self.devices.get(device_id)
        if device is None:
            raise NotFound("device not found")
        device.group = group
        self.dirty_devices.add(device.id)

    def inventory_view(self, device: Device) -> dict[str, Any]:
        """The inventory `DeviceInventoryResponse` shape, scopes kept apart as Mender does."""
        attributes: list[dict[str, Any]] = [
            {"name": name, "value": value, "scope": "identity"}
            for name, value in device.identity.items()
        ]
        for name, item in device.inventory.items():
            attributes.append({"name": name, "scope": "inventory", **item})
        attributes.append({"name": "status", "value": device.status, "scope": "system"})
        attributes.append(
            {"name": "created_ts", "value": rfc3339(device.created), "scope": "system"}
        )
        attributes.append(
            {"name": "updated_ts", "value": rfc3339(device.updated), "scope": "system"}
        )
        if device.group is not None:
            attributes.append({"name": "group", "value": device.group, "scope": "system"})
        updated = device.inventory_updated or device.updated
        return {"id": device.id, "attributes": attributes, "updated_ts": rfc3339(updated)}

    # ---- artifacts -----------------------------------------------------------------------

    def add_artifact(self, artifact: Artifact) -> None:
        for other in self.artifacts.values():
            if other.name == artifact.name and set(other.device_types) & set(artifact.device_types):
                raise Conflict("an artifact with the same name and depends already exists")
        self.artifacts[artifact.id] = artifact
        self.dirty_artifacts.add(artifact.id)

    def _artifact_for(self, name: str, device_type: str) -> Artifact | None:
        for artifact in self.artifacts.values():
            if artifact.name == name and device_type in artifact.device_types:
                return artifact
        return None

    # ---- deployments (management side) ------------------------------------------------------

    def create_deployment(
        self,
        name: str,
        artifact_name: str,
        device_ids: list[str],
        *,
        group: str | None = None,
        force: bool = False,
        update_control_map: dict[str, Any] | None = None,
    ) -> Deployment:
        if not any(a.name == artifact_name for a in self.artifacts.values()):
            raise Unprocessable(f"no artifact named {artifact_name!r}")
        if not device_ids:
            raise StateError("no devices for the deployment")
        now = time.time()
        deployment = Deployment(str(uuid.uuid4()), name, artifact_name, now, group, force)
        deployment.update_control_map = update_control_map
        for device_id in dict.fromkeys(device_ids):
            dd = DeviceDeployment(deployment.id, device_id, created=now)
            deployment.devices[device_id] = dd
            self.active.setdefault(device_id, []).append(dd)
            self.dirty_device_deployments.add((deployment.id, device_id))
        deployment.counts["pending"] = len(deployment.devices)
        self.dd_counts["pending"] += len(deployment.devices)
        self.deployments[deployment.id] = deployment
        self.dirty_deployments.add(deployment.id)
        return deployment

    def accepted_ids(self, group: str | None = None) -> list[str]:
        return [
            d.id
            for d in self.devices.values()
            if d.status == "accepted" and (group is None or d.group == group)
        ]

    def abort(self, deployment_id: str) -> None:
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found")
        if deployment.finished is not None:
            raise Unprocessable("deployment already finished")
        now = time.time()
        for dd in deployment.devices.values():
            if dd.status not in FINAL_STATUSES:
                self._transition(deployment, dd, "aborted", now)

    def statistics(self, deployment_id: str) -> dict[str, int]:
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found")
        return {key: deployment.counts[key] for key in STATISTICS_KEYS}

    def deployment_view(self, deployment: Deployment) -> dict[str, Any]:
        """The `DeploymentV1` shape."""
        view: dict[str, Any] = {
            "id": deployment.id,
            "name": deployment.name,
            "artifact_name": deployment.artifact_name,
            "created": rfc3339(deployment.created),
            "status": deployment.status,
            "device_count": len(deployment.devices),
            "artifacts": [
                a.id for a in self.artifacts.values() if a.name == deployment.artifact_name
            ],
            "type": "software",
        }
        if deployment.group is not None:
            view["groups"] = [deployment.group]
        if deployment.finished is not None:
            view["finished"] = rfc3339(deployment.finished)
        if deployment.update_control_map is not None:
            view["update_control_map"] = self.control_map(deployment)
        return view

    def deployment_devices(self, deployment_id: str, status: str | None) -> list[dict[str, Any]]:
        """The devices of a deployment with their status (the `DeviceWithImage` fields a load
        test reads; `log` says whether a log was uploaded). `status` is one device status, or
        Mender's groups: `finished`, `active` (started, not final) and `pause` (any pause)."""
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found")

        def chosen(dd: DeviceDeployment) -> bool:
            if status is None or dd.status == status:
                return True
            if status == "finished":
                return dd.status in FINAL_STATUSES
            if status == "active":
                return dd.status not in FINAL_STATUSES and dd.status != "pending"
            return status == "pause" and dd.status.startswith("pause")

        views = []
        for dd in deployment.devices.values():
            if not chosen(dd):
                continue
            view: dict[str, Any] = {
                "id": dd.device_id,
                "status": dd.status,
                "created": rfc3339(dd.created),
                "log": dd.log is not None,
            }
            if dd.started is not None:
                view["started"] = rfc3339(dd.started)
            if dd.finished is not None:
                view["finished"] = rfc3339(dd.finished)
            if dd.reported_type is not None:
                view["device_type"] = dd.reported_type
            views.append(view)
        return views

    @staticmethod
    def control_map(deployment: Deployment) -> dict[str, Any]:
        """The map as devices get it: the deployment's id, its priority and states."""
        stored = deployment.update_control_map or {}
        return {"id": deployment.id, "priority": stored.get("priority", 0),
                "states": stored.get("states", {})}  # fmt: skip

    def set_control_map(self, deployment_id: str, update_control_map: dict[str, Any]) -> None:
        """Enterprise's PATCH: replaces the map of a deployment created with one (409 else)."""
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found")
        if deployment.update_control_map is None:
            raise Conflict("the deployment has no update control map")
        deployment.update_control_map = update_control_map
        self.dirty_deployments.add(deployment.id)

    def device_control_map(self, device: Device, deployment_id: str) -> dict[str, Any]:
        """The map a device fetches during its deployment; 404 once it has finished."""
        deployment, dd = self._device_deployment(device, deployment_id)
        if dd.status in FINAL_STATUSES:
            raise NotFound("device deployment has finished")
        return self.control_map(deployment)

    def device_log(self, deployment_id: str, device_id: str) -> str:
        deployment = self.deployments.get(deployment_id)
        dd = deployment.devices.get(device_id) if deployment else None
        if dd is None or dd.log is None:
            raise NotFound("deployment log not found")
        return "".join(f"{m['timestamp']} {m['level']} {m['message']}\n" for m in dd.log)

    # ---- deployments (device side) ---------------------------------------------------------

    def _transition(
        self, deployment: Deployment, dd: DeviceDeployment, status: str, now: float
    ) -> None:
        old = dd.status
        deployment.counts[old] -= 1
        deployment.counts[status] += 1
        self.dd_counts[old] -= 1
        self.dd_counts[status] += 1
        dd.status = status
        if dd.started is None and status != "pending":
            dd.started = now
        self.dirty_device_deployments.add((deployment.id, dd.device_id))
        if status in FINAL_STATUSES and old not in FINAL_STATUSES:
            dd.finished = now
            active = self.active.get(dd.device_id)
            if active is not None and dd in active:
                active.remove(dd)
                if not active:
                    del self.active[dd.device_id]
            done = sum(deployment.counts[s] for s in FINAL_STATUSES)
            if done == len(deployment.devices):
                deployment.finished = now
            self.dirty_deployments.add(deployment.id)

    def next_deployment(
        self, device: Device, artifact_name: str, device_type: str
    ) -> NextAnswer | None:
        """The deployment a polling device should install, applying Mender's server rules."""
        active = self.active.get(device.id)
        now = time.time()
        while active:
            dd = active[0]
            deployment = self.deployments[dd.deployment_id]
            if dd.artifact_id is not None:
                if (dd.reported_artifact, dd.reported_type) != (artifact_name, device_type):
                    self._transition(deployment, dd, "failure", now)
                    raise Conflict("conflicting artifact_name or device_type mid-deployment")
                return NextAnswer(dd, self.artifacts[dd.artifact_id])
            if artifact_name == deployment.artifact_name and not deployment.force:
                self._transition(deployment, dd, "already-installed", now)
                continue
            artifact = self._artifact_for(deployment.artifact_name, device_type)
            if artifact is None:
                self._transition(deployment, dd, "noartifact", now)
                continue
            dd.artifact_id = artifact.id
            dd.reported_artifact = artifact_name
            dd.reported_type = device_type
            self.dirty_device_deployments.add((deployment.id, device.id))
            return NextAnswer(dd, artifact)
        return None

    def _device_deployment(self, device: Device, deployment_id: str) -> tuple[Deployment, Any]:
        deployment = self.deployments.get(deployment_id)
        dd = deployment.devices.get(device.id) if deployment else None
        if deployment is None or dd is None:
            raise NotFound("deployment not found for this device")
        return deployment, dd

    def report_status(
        self, device: Device, deployment_id: str, status: str, substate: str | None
    ) -> None:
        deployment, dd = self._device_deployment(device, deployment_id)
        if dd.status == "aborted":
            raise Conflict("deployment aborted")
        if dd.status == status:  # a repeat, as the client sends when its log upload is retried
            return
        if dd.status in FINAL_STATUSES:
            raise Conflict(f"deployment already finished with status {dd.status}")
        dd.substate = substate
        self._transition(deployment, dd, status, time.time())

    def store_log(self, device: Device, deployment_id: str, messages: list[dict]) -> None:
        deployment, dd = self._device_deployment(device, deployment_id)
        dd.log = messages
        self.dirty_device_deployments.add((deployment.id, device.id))

    # ---- summaries ----------------------------------------------------------------------------

    def summary(self) -> dict[str, dict[str, int]]:
        deployments = Counter(d.status for d in self.deployments.values())
        return {
            "devices": {k: v for k, v in self.device_counts.items() if v},
            "deployments": dict(deployments),
            "device_deployments": {k: v for k, v in self.dd_counts.items() if v},
        }
