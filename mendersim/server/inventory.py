"""Inventory: the device's `PUT`/`PATCH` of its attributes, and the management views of them."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from mendersim.server import replies
from mendersim.server.context import ServerContext
from mendersim.server.routing import DEVICE, MANAGEMENT, Route
from mendersim.server.state import StateError

DEVICE_PATH = "/api/devices/v1/inventory/device/attributes"
MGMT_DEVICE = "/api/management/v1/inventory/devices/{id}"
MGMT_GROUP = "/api/management/v1/inventory/devices/{id}/group"
_GROUP_NAME = re.compile(r"[A-Za-z0-9_-]+")  # Mender's rule for group names


def _valid_value(value: Any) -> bool:
    """String, number, or a non-mixed list of strings or of numbers (per the spec)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (str, int, float)):
        return True
    if not isinstance(value, list):
        return False
    if all(isinstance(v, str) for v in value):
        return True
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def parse_attributes(data: Any) -> dict[str, dict[str, Any]]:
    """A request's list of `{"name", "value", "description"?}` keyed by name."""
    if not isinstance(data, list):
        raise replies.BadRequest("expected a JSON list of attributes")
    attributes: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(data):
        where = f"attribute {index}"
        if not isinstance(item, dict):
            raise replies.BadRequest(f"{where}: expected an object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise replies.BadRequest(f"{where}: name must be a non-empty string")
        if "value" not in item or not _valid_value(item["value"]):
            raise replies.BadRequest(
                f"{where} ({name}): value must be a string, a number or a list of one of them"
            )
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise replies.BadRequest(f"{where} ({name}): description must be a string")
        entry: dict[str, Any] = {"value": item["value"]}
        if description:
            entry["description"] = description
        attributes[name] = entry
    return attributes


class Inventory:
    def __init__(self, ctx: ServerContext) -> None:
        self.state = ctx.state

    def routes(self) -> list[Route]:
        return [
            Route("PUT", DEVICE_PATH, self.replace, DEVICE, "inventory"),
            Route("PATCH", DEVICE_PATH, self.upsert, DEVICE, "inventory"),
            Route("GET", MGMT_DEVICE, self.get_device, MANAGEMENT),
            Route("PUT", MGMT_GROUP, self.assign_group, MANAGEMENT),
        ]

    async def _store(self, request: web.Request, *, replace: bool) -> web.Response:
        try:
            attributes = parse_attributes(await replies.read_json(request))
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        self.state.set_inventory(request["device"], attributes, replace=replace)
        return web.Response(status=200)

    async def replace(self, request: web.Request) -> web.Response:
        return await self._store(request, replace=True)

    async def upsert(self, request: web.Request) -> web.Response:
        return await self._store(request, replace=False)

    async def get_device(self, request: web.Request) -> web.Response:
        device = self.state.devices.get(request.match_info["id"])
        if device is None:
            return replies.error(404, "device not found", request)
        return replies.json_response(self.state.inventory_view(device))

    async def assign_group(self, request: web.Request) -> web.Response:
        try:
            group = replies.require_str(await replies.read_json(request), "group")
            if not _GROUP_NAME.fullmatch(group):
                raise replies.BadRequest("group: only letters, digits, '-' and '_' are allowed")
            self.state.assign_group(request.match_info["id"], group)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(status=204)
