"""Deviceconfig: the configuration a device is given and the one it reports back.

Kept apart from `ServerState` (its own in-memory store): a configuration is not part of
what `--db` persists, like Mender keeps it in its own deviceconfig service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mendersim.server import replies
from mendersim.server.context import ServerContext
from mendersim.server.routing import DEVICE, MANAGEMENT, Route
from mendersim.server.state import rfc3339

DEVICE_PATH = "/api/devices/v1/deviceconfig/configuration"
MGMT_PATH = "/api/management/v1/deviceconfig/configurations/device/{id}"


@dataclass(slots=True)
class Configuration:
    configured: dict[str, str] = field(default_factory=dict)
    reported: dict[str, str] = field(default_factory=dict)
    updated: float | None = None
    reported_at: float | None = None


def parse_configuration(data: Any) -> dict[str, str]:
    """A `{key: string}` object, as the spec's configuration schemas require."""
    if not isinstance(data, dict):
        raise replies.BadRequest("configuration must be a JSON object")
    for key, value in data.items():
        if not isinstance(value, str):
            raise replies.BadRequest(f"configuration {key!r}: value must be a string")
    return dict(data)


class DeviceConfig:
    def __init__(self, ctx: ServerContext) -> None:
        self.state = ctx.state
        self.configurations: dict[str, Configuration] = {}

    def routes(self) -> list[Route]:
        return [
            Route("GET", DEVICE_PATH, self.device_get, DEVICE),
            Route("PUT", DEVICE_PATH, self.device_report, DEVICE),
            Route("GET", MGMT_PATH, self.management_get, MANAGEMENT),
            Route("PUT", MGMT_PATH, self.management_set, MANAGEMENT),
        ]

    def _of(self, device_id: str) -> Configuration:
        return self.configurations.setdefault(device_id, Configuration())

    async def device_get(self, request: web.Request) -> web.Response:
        return replies.json_response(self._of(request["device"].id).configured)

    async def device_report(self, request: web.Request) -> web.Response:
        try:
            reported = parse_configuration(await replies.read_json(request))
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        entry = self._of(request["device"].id)
        entry.reported, entry.reported_at = reported, time.time()
        return web.Response(status=204)

    async def management_get(self, request: web.Request) -> web.Response:
        device_id = request.match_info["id"]
        if device_id not in self.state.devices and device_id not in self.configurations:
            return replies.error(404, "device not found", request)
        entry = self._of(device_id)
        view: dict[str, Any] = {
            "id": device_id,
            "configured": entry.configured,
            "reported": entry.reported,
        }
        if entry.updated is not None:
            view["updated_ts"] = rfc3339(entry.updated)
        if entry.reported_at is not None:
            view["reported_ts"] = rfc3339(entry.reported_at)
        return replies.json_response(view)

    async def management_set(self, request: web.Request) -> web.Response:
        device_id = request.match_info["id"]
        try:
            configured = parse_configuration(await replies.read_json(request))
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        # Mender's spec has no 404 here: the deviceconfig service stores a configuration for
        # any id, so one may be set before the device first connects.
        entry = self._of(device_id)
        entry.configured, entry.updated = configured, time.time()
        return web.Response(status=204)
