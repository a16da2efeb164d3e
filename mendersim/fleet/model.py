"""What the seed store hands to a run: one compact record per device."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mendersim.fleet import keys
from mendersim.fleet.acceptance import ServerKey

InventoryValue = str | int | float | list[str] | list[int] | list[float]


@dataclass(slots=True)
class DeploymentRecord:
    """One deployment as the device lived it; flows back to the store's history table."""

    deployment_id: str
    artifact_name: str
    started: float  # unix time
    finished: float | None = None
    result: str | None = None  # success | failure | already-installed | aborted
    failure_reason: str | None = None


@dataclass(slots=True)
class DeviceRecord:
    """A seeded device. Keys stay PEM until needed: a loaded key costs kilobytes, a PEM bytes."""

    device_id: str  # the store's stable id, e.g. "automotive-000042"; never a stats name
    profile: str  # industry profile name
    key_type: str
    id_data: dict[str, str]  # Mender identity; keys sorted when serialised
    private_key_pem: bytes
    public_key_pem: str
    device_type: str
    artifact_name: str  # installed artifact
    inventory: dict[str, InventoryValue]  # baseline attributes from the profile
    status: str = "new"  # new | pending | accepted | rejected (as the run's server last said)
    partition: str = "a"  # active A/B rootfs partition
    provides: dict[str, str] = field(default_factory=dict)  # artifact_provides beyond the name

    def id_data_json(self) -> str:
        """`id_data` exactly as the client sends it: keys sorted, compact."""
        return json.dumps(self.id_data, sort_keys=True, separators=(",", ":"))

    def private_key(self) -> keys.PrivateKey:
        """Load the key; validation is skipped because the store made and checked it."""
        return keys.load_private(self.private_key_pem, trusted=True)

    def attributes(self) -> dict[str, Any]:
        """What profile quirks match against: identity, device type and inventory."""
        return {**self.id_data, **self.inventory, "device_type": self.device_type}


@dataclass(slots=True)
class DeviceStateUpdate:
    """A device's state after a run, written back to the store by one process."""

    device_id: str
    status: str
    artifact_name: str
    partition: str
    provides: dict[str, str]
    history: list[DeploymentRecord]  # deployments not yet written to the store
    server: ServerKey | None = None  # whose answer `status` is; None: not kept
