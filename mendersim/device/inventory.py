"""The inventory the device sends, as the C++ client builds it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mendersim import CLIENT_VERSION
from mendersim.fleet.model import DeviceRecord

INVENTORY_PATH = "/api/devices/v1/inventory/device/attributes"


def inventory_body(record: DeviceRecord, churned: Mapping[str, Any] | None = None) -> bytes:
    """PUT body: profile attributes (with their churned values), provides, artifact, device type
    and client version, sorted by name."""
    attributes: dict[str, object] = {
        **record.inventory,
        **(churned or {}),
        **record.provides,
        "artifact_name": record.artifact_name,
        "device_type": record.device_type,
        "mender_client_version": CLIENT_VERSION,
    }
    items = [{"name": name, "value": attributes[name]} for name in sorted(attributes)]
    return json.dumps(items, separators=(",", ":")).encode()
