"""Deployments, device side: `next` (v1 GET/POST, v2 POST), status reports and log uploads, and
the v2 update control map a device fetches during a deployment (Enterprise's API).

`next` is the hot path of every load test: a device with nothing to do costs a token-cache hit,
a dict lookup and an empty 204.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from mendersim.server import replies
from mendersim.server.context import ServerContext
from mendersim.server.routing import DEVICE, Route
from mendersim.server.state import (
    DEVICE_SETTABLE_STATUSES,
    FINAL_STATUSES,
    Conflict,
    NextAnswer,
    StateError,
)

V1 = "/api/devices/v1/deployments/device/deployments"
V2 = "/api/devices/v2/deployments/device/deployments"
V2_NEXT = f"{V2}/next"


class DeviceDeployments:
    def __init__(self, ctx: ServerContext) -> None:
        self.state = ctx.state
        self.store = ctx.store
        self.v2_enabled = ctx.config.v2_next
        self.ctx = ctx

    def routes(self) -> list[Route]:
        return [
            Route("GET", f"{V1}/next", self.next_v1_get, DEVICE, "next"),
            Route("POST", f"{V1}/next", self.next_v1_post, DEVICE, "next"),
            Route("POST", V2_NEXT, self.next_v2, DEVICE, "next"),
            Route("GET", f"{V2}/{{id}}/update_control_map", self.control_map, DEVICE),
            Route("PUT", f"{V1}/{{id}}/status", self.status, DEVICE, "status"),
            Route("PUT", f"{V1}/{{id}}/log", self.log, DEVICE, "log"),
        ]

    async def next_v1_get(self, request: web.Request) -> web.Response:
        query = request.query
        artifact_name = query.get("artifact_name")
        device_type = query.get("device_type")
        if not artifact_name or not device_type:
            return replies.error(400, "artifact_name and device_type are required", request)
        return self._next(request, artifact_name, device_type)

    async def next_v1_post(self, request: web.Request) -> web.Response:
        try:
            data = await replies.read_json(request)
            artifact_name = replies.require_str(data, "artifact_name")
            device_type = replies.require_str(data, "device_type")
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        return self._next(request, artifact_name, device_type)

    async def next_v2(self, request: web.Request) -> web.Response:
        if not self.v2_enabled:
            return replies.error(404, "Resource not found", request)
        try:
            data = await replies.read_json(request)
            provides = data.get("device_provides") if isinstance(data, dict) else None
            if not isinstance(provides, dict):
                raise replies.BadRequest("device_provides: must be an object")
            artifact_name = replies.require_str(provides, "artifact_name")
            device_type = replies.require_str(provides, "device_type")
            with_map = data.get("update_control_map", False)
            if not isinstance(with_map, bool):
                raise replies.BadRequest("update_control_map: must be a boolean")
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        return self._next(request, artifact_name, device_type, with_map)

    async def control_map(self, request: web.Request) -> web.Response:
        if not self.v2_enabled:
            return replies.error(404, "Resource not found", request)
        try:
            found = self.state.device_control_map(request["device"], request.match_info["id"])
        except StateError as exc:
            return replies.state_error(exc, request)
        return replies.json_response({"update_control_map": found})

    def _next(
        self, request: web.Request, artifact_name: str, device_type: str, with_map: bool = False
    ) -> web.Response:
        device = request["device"]
        if device.id not in self.state.active:
            return web.Response(status=204)
        try:
            answer = self.state.next_deployment(device, artifact_name, device_type)
        except StateError as exc:
            return replies.state_error(exc, request)
        if answer is None:
            return web.Response(status=204)
        instructions = self._instructions(answer)
        deployment = self.state.deployments[answer.device_deployment.deployment_id]
        if with_map and deployment.update_control_map is not None:
            instructions["update_control_map"] = self.state.control_map(deployment)
        return web.Response(text=json.dumps(instructions), content_type="application/json")

    def _instructions(self, answer: NextAnswer) -> dict[str, Any]:
        artifact = answer.artifact
        uri, expire = self.store.presign(artifact.id)
        return {
            "id": answer.device_deployment.deployment_id,
            "artifact": {
                "id": artifact.id,
                "artifact_name": artifact.name,
                "source": {"uri": uri, "expire": expire},
                "device_types_compatible": list(artifact.device_types),
            },
        }

    async def status(self, request: web.Request) -> web.Response:
        try:
            data = await replies.read_json(request)
            status = replies.require_str(data, "status")
            substate = replies.require_str(data, "substate", optional=True)
            if status not in DEVICE_SETTABLE_STATUSES:
                raise replies.BadRequest(f"status: {status!r} is not a device-settable status")
            self.state.report_status(request["device"], request.match_info["id"], status, substate)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except Conflict:
            return web.Response(status=409)  # the spec's 409 here has no body
        except StateError as exc:
            return replies.state_error(exc, request)
        if status in FINAL_STATUSES and self.ctx.durable is not None:
            await self.ctx.durable()
        return web.Response(status=204)

    async def log(self, request: web.Request) -> web.Response:
        try:
            messages = _parse_log(await replies.read_json(request))
            self.state.store_log(request["device"], request.match_info["id"], messages)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(status=204)


def _parse_log(data: Any) -> list[dict[str, str]]:
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not messages:
        raise replies.BadRequest("messages: must be a non-empty list")
    parsed = []
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("timestamp", "level", "message")
        ):
            raise replies.BadRequest(
                f"messages[{index}]: timestamp, level and message must be strings"
            )
        parsed.append({k: item[k] for k in ("timestamp", "level", "message")})
    return parsed
