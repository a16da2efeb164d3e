"""The inventory the device sends, as the C++ client builds it."""

from __future__ import annotations

import json

from mendersim import CLIENT_VERSION
from mendersim.fleet.model import DeviceRecord

INVENTORY_PATH = "/api/devices/v1/inventory/device/attributes"


def inventory_body(record: DeviceRecord) -> bytes:
    """PUT body: profile attributes, provides, artifact, device type and client version, by name."""
    attributes: dict[str, object] = {
        **record.inventory,
        **record.provides,
        "artifact_name": record.artifact_name,
        "device_type": record.device_type,
        "mender_client_version": CLIENT_VERSION,
    }
    items = [{"name": name, "value": attributes[name]} for name in sorted(attributes)]
    return json.dumps(items, separators=(",", ":")).encode()
