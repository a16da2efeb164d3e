"""How a handler module declares its routes: path, who may call it, and its fault family."""

from __future__ import annotations

from typing import NamedTuple

# Route kinds: who may call a route.
DEVICE = "device"  # needs a device JWT
OPEN = "open"  # no credentials (auth requests, presigned downloads)
MANAGEMENT = "management"  # needs the management bearer token


class Route(NamedTuple):
    method: str
    path: str
    handler: object
    kind: str
    endpoint: str | None = None  # fault family (auth, next, ...); None: no faults
