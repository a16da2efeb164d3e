"""The management API subset a load test needs, on Mender's paths and in Mender's shapes:
devauth v2 (list, count, accept/reject, preauthorize), artifacts (upload, list) and deployments
(create for devices/group/all, list, show, statistics, abort, devices with their status, device
log)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.device.controlmap import ControlMapError, check_map
from mendersim.fleet import keys
from mendersim.server import replies
from mendersim.server.context import ServerContext
from mendersim.server.deviceauth import canonical_id_data
from mendersim.server.routing import MANAGEMENT, Route
from mendersim.server.state import DEVICE_STATUSES, Artifact, StateError, rfc3339
from mendersim.server.storage import UploadTooLarge

log = logging.getLogger(__name__)

DEVAUTH = "/api/management/v2/devauth/devices"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
ARTIFACTS = "/api/management/v1/deployments/artifacts"
_MAX_PER_PAGE = 500
# The `status` filter of "List Devices in Deployment" (deployments management v1).
DEPLOYMENT_DEVICE_STATUSES = (
    "failure", "aborted", "pause_before_installing", "pause_before_committing",
    "pause_before_rebooting", "downloading", "installing", "rebooting", "pending", "success",
    "noartifact", "already-installed", "decommissioned", "pause", "active", "finished",
)  # fmt: skip


def _int_param(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        raise replies.BadRequest(f"{name}: must be an integer from 1 to {maximum or 'any'}")
    return int(raw)


def _status_param(request: web.Request) -> str | None:
    status = request.query.get("status")
    if status is not None and status not in DEVICE_STATUSES:
        raise replies.BadRequest(f"status: must be one of {', '.join(DEVICE_STATUSES)}")
    return status


class Management:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.store = ctx.store

    def routes(self) -> list[Route]:
        return [
            Route("GET", DEVAUTH, self.list_devices, MANAGEMENT),
            Route("POST", DEVAUTH, self.preauthorize, MANAGEMENT),
            Route("GET", f"{DEVAUTH}/count", self.count_devices, MANAGEMENT),
            Route("GET", f"{DEVAUTH}/{{id}}", self.get_device, MANAGEMENT),
            Route("PUT", f"{DEVAUTH}/{{id}}/auth/{{aid}}/status", self.set_status, MANAGEMENT),
            Route("POST", ARTIFACTS, self.upload_artifact, MANAGEMENT),
            Route("GET", ARTIFACTS, self.list_artifacts, MANAGEMENT),
            Route("POST", DEPLOYMENTS, self.create_deployment, MANAGEMENT),
            Route(
                "POST", f"{DEPLOYMENTS}/group/{{name}}", self.create_group_deployment, MANAGEMENT
            ),
            Route("GET", DEPLOYMENTS, self.list_deployments, MANAGEMENT),
            Route("GET", f"{DEPLOYMENTS}/{{id}}", self.get_deployment, MANAGEMENT),
            Route("PATCH", f"{DEPLOYMENTS}/{{id}}", self.patch_control_map, MANAGEMENT),
            Route("GET", f"{DEPLOYMENTS}/{{id}}/statistics", self.statistics, MANAGEMENT),
            Route("PUT", f"{DEPLOYMENTS}/{{id}}/status", self.abort, MANAGEMENT),
            Route("GET", f"{DEPLOYMENTS}/{{id}}/devices/list", self.deployment_devices, MANAGEMENT),
            Route(
                "GET",
                f"{DEPLOYMENTS}/{{id}}/devices/{{device_id}}/log",
                self.device_log,
                MANAGEMENT,
            ),
        ]

    # ---- devauth -----------------------------------------------------------------------

    async def list_devices(self, request: web.Request) -> web.Response:
        try:
            status = _status_param(request)
            page = _int_param(request, "page", 1)
            per_page = _int_param(request, "per_page", 20, _MAX_PER_PAGE)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        wanted = set(request.query.getall("id", []))
        devices = [
            d
            for d in self.state.devices.values()
            if (status is None or d.status == status) and (not wanted or d.id in wanted)
        ]
        chunk = devices[(page - 1) * per_page : page * per_page]
        return replies.json_response([self.state.device_view(d) for d in chunk])

    async def count_devices(self, request: web.Request) -> web.Response:
        try:
            status = _status_param(request)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        counts = self.state.device_counts
        count = sum(counts.values()) if status is None else counts[status]
        return replies.json_response({"count": count})

    async def get_device(self, request: web.Request) -> web.Response:
        device = self.state.devices.get(request.match_info["id"])
        if device is None:
            return replies.error(404, "device not found", request)
        return replies.json_response(self.state.device_view(device))

    async def set_status(self, request: web.Request) -> web.Response:
        try:
            status = replies.require_str(await replies.read_json(request), "status")
            self.state.set_auth_status(request.match_info["id"], request.match_info["aid"], status)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(status=204)

    async def preauthorize(self, request: web.Request) -> web.Response:
        try:
            data = await replies.read_json(request)
            pubkey = replies.require_str(data, "pubkey")
            identity = data.get("identity_data")
            if not isinstance(identity, dict) or not identity:
                raise replies.BadRequest("identity_data: must be a non-empty object")
            normalised = keys.public_pem(keys.load_public(pubkey))
            device = self.state.preauthorize(identity, canonical_id_data(identity), normalised)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except keys.InvalidKeyError as exc:
            return replies.error(400, f"pubkey: {exc}", request)
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(status=201, headers={"Location": f"devices/{device.id}"})

    # ---- artifacts ---------------------------------------------------------------------

    async def upload_artifact(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            return replies.error(400, "expected a multipart/form-data body", request)
        description = ""
        stored: tuple[str, int] | None = None
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "description":
                description = await part.text()
            elif part.name == "artifact":
                try:
                    stored = await self.store.receive(part, self.ctx.config.max_upload)
                except UploadTooLarge as exc:
                    return replies.error(413, f"artifact larger than {exc} bytes", request)
                break  # the artifact is the last part, as in Mender
            else:
                await part.release()
        if stored is None:
            return replies.error(400, "request does not contain the artifact", request)
        filename, size = stored
        try:
            artifact = await asyncio.get_running_loop().run_in_executor(
                None, self._describe, filename, size, description
            )
            self.state.add_artifact(artifact)
        except ArtifactError as exc:
            self.store.discard(filename)
            return replies.error(400, f"cannot read artifact: {exc}", request)
        except StateError as exc:
            self.store.discard(filename)
            return replies.state_error(exc, request)
        log.info("artifact %s (%s) uploaded, %d bytes", artifact.name, artifact.id, size)
        return web.Response(status=201, headers={"Location": f"artifacts/{artifact.id}"})

    def _describe(self, filename: str, size: int, description: str) -> Artifact:
        with open(self.store.directory / filename, "rb") as source:
            info = read_artifact(source, accept_augmented=True)
        return Artifact(
            id=str(uuid.uuid4()),
            name=info.name,
            description=description,
            device_types=list(info.device_types),
            provides=dict(info.provides),
            depends=dict(info.depends),
            update_type=info.update_type or "",
            signed=info.signed,
            size=size,
            modified=time.time(),
            filename=filename,
            files=[
                {"name": f.name, "checksum": f.sha256, "size": f.size} for f in info.payload_files
            ],
        )

    async def list_artifacts(self, request: web.Request) -> web.Response:
        return replies.json_response([_artifact_view(a) for a in self.state.artifacts.values()])

    # ---- deployments -------------------------------------------------------------------

    async def _new_deployment(self, request: web.Request, group: str | None) -> web.Response:
        try:
            data = await replies.read_json(request)
            name = replies.require_str(data, "name")
            artifact_name = replies.require_str(data, "artifact_name")
            force = data.get("force_installation", False) is True
            control_map = _control_map(data)
            if group is not None:
                device_ids = self.state.accepted_ids(group)
            else:
                device_ids = _device_selection(data, self.state.accepted_ids)
            deployment = self.state.create_deployment(
                name,
                artifact_name,
                device_ids,
                group=group,
                force=force,
                update_control_map=control_map,
            )
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        log.info(
            "deployment %s of %s to %d device(s) created",
            deployment.id,
            artifact_name,
            len(deployment.devices),
        )
        return web.Response(status=201, headers={"Location": f"deployments/{deployment.id}"})

    async def create_deployment(self, request: web.Request) -> web.Response:
        return await self._new_deployment(request, None)

    async def create_group_deployment(self, request: web.Request) -> web.Response:
        return await self._new_deployment(request, request.match_info["name"])

    async def list_deployments(self, request: web.Request) -> web.Response:
        try:
            page = _int_param(request, "page", 1)
            per_page = _int_param(request, "per_page", 20, _MAX_PER_PAGE)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        status = request.query.get("status")
        deployments = [
            d for d in self.state.deployments.values() if status is None or d.status == status
        ]
        deployments.sort(key=lambda d: d.created, reverse=True)
        chunk = deployments[(page - 1) * per_page : page * per_page]
        return replies.json_response(
            [self.state.deployment_view(d) for d in chunk],
            **{"X-Total-Count": str(len(deployments))},
        )

    async def get_deployment(self, request: web.Request) -> web.Response:
        deployment = self.state.deployments.get(request.match_info["id"])
        if deployment is None:
            return replies.error(404, "deployment not found", request)
        return replies.json_response(self.state.deployment_view(deployment))

    async def patch_control_map(self, request: web.Request) -> web.Response:
        """Enterprise's way to continue (or fail) a paused deployment: a new map's states."""
        try:
            data = await replies.read_json(request)
            control_map = _control_map(data)
            if control_map is None:
                raise replies.BadRequest("update_control_map: required")
            self.state.set_control_map(request.match_info["id"], control_map)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(status=204)

    async def statistics(self, request: web.Request) -> web.Response:
        try:
            return replies.json_response(self.state.statistics(request.match_info["id"]))
        except StateError as exc:
            return replies.state_error(exc, request)

    async def abort(self, request: web.Request) -> web.Response:
        try:
            data = await replies.read_json(request)
            if replies.require_str(data, "status") != "aborted":
                raise replies.BadRequest("status: only 'aborted' can be set")
            self.state.abort(request.match_info["id"])
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(status=204)

    async def deployment_devices(self, request: web.Request) -> web.Response:
        try:
            page = _int_param(request, "page", 1)
            per_page = _int_param(request, "per_page", 20, _MAX_PER_PAGE)
            status = request.query.get("status")
            if status is not None and status not in DEPLOYMENT_DEVICE_STATUSES:
                raise replies.BadRequest(
                    f"status: must be one of {', '.join(DEPLOYMENT_DEVICE_STATUSES)}"
                )
            views = self.state.deployment_devices(request.match_info["id"], status)
        except replies.BadRequest as exc:
            return replies.error(400, str(exc), request)
        except StateError as exc:
            return replies.state_error(exc, request)
        chunk = views[(page - 1) * per_page : page * per_page]
        return replies.json_response(chunk, **{"X-Total-Count": str(len(views))})

    async def device_log(self, request: web.Request) -> web.Response:
        try:
            text = self.state.device_log(request.match_info["id"], request.match_info["device_id"])
        except StateError as exc:
            return replies.state_error(exc, request)
        return web.Response(text=text, content_type="text/plain")


def _control_map(data: Any) -> dict[str, Any] | None:
    """The body's `update_control_map` (`priority`, `states`), checked by the rules a Go client
    3.5 applies to what it receives, so no device refuses what the server accepted."""
    given = data.get("update_control_map") if isinstance(data, dict) else None
    if given is None:
        return None
    if isinstance(given, dict) and "id" in given:
        raise replies.BadRequest("update_control_map: the id is the deployment's, do not give one")
    try:
        check_map(given)
    except ControlMapError as exc:
        raise replies.BadRequest(f"update_control_map: {exc}") from None
    return {"priority": given.get("priority", 0), "states": given.get("states") or {}}


def _device_selection(data: dict[str, Any], accepted_ids: Any) -> list[str]:
    devices = data.get("devices")
    all_devices = data.get("all_devices", False) is True
    if devices is not None and (
        not isinstance(devices, list) or not all(isinstance(d, str) and d for d in devices)
    ):
        raise replies.BadRequest("devices: must be a list of device ids")
    if bool(devices) == all_devices:
        raise replies.BadRequest("give either a non-empty devices list or all_devices: true")
    return list(devices) if devices else accepted_ids()


def _artifact_view(artifact: Artifact) -> dict[str, Any]:
    """The `ArtifactV1` shape."""
    return {
        "id": artifact.id,
        "name": artifact.name,
        "description": artifact.description,
        "device_types_compatible": artifact.device_types,
        "info": {"format": "mender", "version": 3},
        "signed": artifact.signed,
        "updates": [{"type_info": {"type": artifact.update_type}, "files": artifact.files}],
        "artifact_provides": artifact.provides,
        "artifact_depends": artifact.depends,
        "size": artifact.size,
        "modified": rfc3339(artifact.modified),
    }
