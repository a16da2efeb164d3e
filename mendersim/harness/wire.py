"""Records and state updates as plain dicts, for Locust's msgpack messages between processes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeploymentRecord, DeviceRecord, DeviceStateUpdate

# Message types: worker → master
LEASE = "mendersim:lease"  # {"key", "more", "restart"}: hand me `more` devices
STATES = "mendersim:states"  # {"updates": [...], "final": bool}
RETURN = "mendersim:return"  # {"key", "ids"}: devices no user of mine simulates any more
# master → worker
SLICE = "mendersim:slice"  # {"records": [...], "engine": {...}, "profiles": {...}, "last", "error"}
COLLECT = "mendersim:collect"  # {}: stop the devices and send every state update, final

CHUNK = 500  # records per message: a few hundred kB with RSA keys


def record_to_wire(record: DeviceRecord) -> dict[str, Any]:
    return asdict(record)


def record_from_wire(data: dict[str, Any]) -> DeviceRecord:
    fields = dict(data)
    pem = fields["private_key_pem"]
    fields["private_key_pem"] = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
    return DeviceRecord(**fields)


def update_to_wire(update: DeviceStateUpdate) -> dict[str, Any]:
    return asdict(update)


def update_from_wire(data: dict[str, Any]) -> DeviceStateUpdate:
    fields = dict(data)
    fields["history"] = [DeploymentRecord(**item) for item in fields["history"]]
    server = fields.get("server")
    fields["server"] = ServerKey(**server) if server else None
    return DeviceStateUpdate(**fields)


def apply_update(record: DeviceRecord, update: DeviceStateUpdate) -> None:
    """Carry a device's state into its record, so a device built again resumes it."""
    record.status = update.status
    record.artifact_name = update.artifact_name
    record.partition = update.partition
    record.provides = dict(update.provides)
