"""Records and state updates as plain dicts, for Locust's msgpack messages between processes."""

from __future__ import annotations

from dataclasses import asdict, fields
from operator import attrgetter
from typing import Any

from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.model import DeploymentRecord, DeviceRecord, DeviceStateUpdate

# Message types: worker → master
LEASE = "mendersim:lease"  # {"key", "more", "restart"}: hand me `more` devices
STATES = "mendersim:states"  # {"updates": [...], "final": bool}
RETURN = "mendersim:return"  # {"key", "ids"}: devices no user of mine simulates any more
# master → worker
SLICE = "mendersim:slice"  # {"records": [...], "engine": {...}, "profiles": {...}, "last", "error"}
COLLECT = "mendersim:collect"  # {quitting}: stop the devices and send every state update, final

CHUNK = 500  # records per message: a few hundred kB with RSA keys

# A record travels as its field values in order: a million of them cost the master seconds as
# dicts (asdict copies deeply), a fraction of that as tuples.
_RECORD_FIELDS = [f.name for f in fields(DeviceRecord)]
_record_values = attrgetter(*_RECORD_FIELDS)
_PEM = _RECORD_FIELDS.index("private_key_pem")


def record_to_wire(record: DeviceRecord) -> tuple[Any, ...]:
    return _record_values(record)


def record_from_wire(data: list[Any]) -> DeviceRecord:
    values = list(data)
    pem = values[_PEM]
    values[_PEM] = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
    return DeviceRecord.shared(*values)


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
