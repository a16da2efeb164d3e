"""What the seed store hands to a run: one compact record per device."""

from __future__ import annotations

import json
import sys
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


# JSON as the client sends id_data: keys sorted, compact. One encoder for every call.
compact_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


@dataclass(slots=True)
class DeviceRecord:
    """A seeded device, as compact as its store row: a million fit in well under a gigabyte.

    Identity and inventory stay JSON text and the key stays PEM until the device needs them;
    the public key is derived from the private key whenever it is sent, as the client does.
    """

    device_id: str  # the store's stable id, e.g. "automotive-000042"; never a stats name
    profile: str  # industry profile name
    key_type: str
    id_data_text: str  # Mender identity, as compact_json writes it
    private_key_pem: bytes
    device_type: str
    artifact_name: str  # installed artifact
    inventory_text: str  # baseline attributes from the profile, as compact_json writes them
    status: str = "new"  # new | pending | accepted | rejected (as the run's server last said)
    partition: str = "a"  # active A/B rootfs partition
    provides: dict[str, str] = field(default_factory=dict)  # artifact_provides beyond the name

    @classmethod
    def shared(
        cls,
        device_id: str,
        profile: str,
        key_type: str,
        id_data_text: str,
        private_key_pem: bytes,
        device_type: str,
        artifact_name: str,
        inventory_text: str,
        status: str,
        partition: str,
        provides: dict[str, str],
    ) -> DeviceRecord:
        """A record as loaders build it: values many devices have in common (profile, types,
        inventory, state) are one string for all of them, not one per device."""
        s = sys.intern
        return cls(
            device_id,
            s(profile),
            s(key_type),
            id_data_text,
            private_key_pem,
            s(device_type),
            s(artifact_name),
            s(inventory_text),
            s(status),
            s(partition),
            provides,
        )

    @property
    def id_data(self) -> dict[str, str]:
        return json.loads(self.id_data_text)

    def id_data_json(self) -> str:
        """`id_data` exactly as the client sends it: keys sorted, compact."""
        return self.id_data_text

    @property
    def inventory(self) -> dict[str, InventoryValue]:
        return json.loads(self.inventory_text)

    def private_key(self) -> keys.PrivateKey:
        """Load the key; validation is skipped because the store made and checked it."""
        return keys.load_private(self.private_key_pem, trusted=True)

    @property
    def public_key_pem(self) -> str:
        """The SPKI PEM the device sends in `pubkey`, derived from its private key."""
        return keys.public_pem(self.private_key())

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
