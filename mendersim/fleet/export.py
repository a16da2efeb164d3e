"""`mendersim fleet export`: the seeded identities and public keys, for a Mender user's own tools
(pre-authorization scripts, inventory imports). Private keys never leave the store."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO

from mendersim.fleet.store import SeedStore

FIELDS = ("device_id", "profile", "device_type", "key_type", "identity_data", "public_key")
CHUNK = 5000


def exported_devices(store: SeedStore) -> Iterator[dict[str, object]]:
    offset = 0
    while chunk := store.load_devices(offset=offset, limit=CHUNK):
        offset += len(chunk)
        for record in chunk:
            yield {
                "device_id": record.device_id,
                "profile": record.profile,
                "device_type": record.device_type,
                "key_type": record.key_type,
                "identity_data": record.id_data,
                "public_key": record.public_key_pem,
            }


def export(store: SeedStore, out: IO[str], fmt: str) -> int:
    """Write every device as CSV (identity data as compact JSON) or JSON lines; the count."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for device in exported_devices(store):
        if writer is not None:
            identity = json.dumps(device["identity_data"], sort_keys=True, separators=(",", ":"))
            writer.writerow({**device, "identity_data": identity})
        else:
            out.write(json.dumps(device, sort_keys=True) + "\n")
        count += 1
    return count
