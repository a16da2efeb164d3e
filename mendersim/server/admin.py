"""mendersim's own endpoints under `/_mendersim/`: the status counters tests and the web UI read,
and the faults changed while a run goes on (management token required); an open health check
for container engines and orchestrators, which hold no token."""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web

from mendersim.errors import ConfigError
from mendersim.server import replies
from mendersim.server.context import ServerContext
from mendersim.server.deviceconnect import DeviceConnect
from mendersim.server.routing import MANAGEMENT, OPEN, Route

log = logging.getLogger(__name__)


class Admin:
    def __init__(self, ctx: ServerContext, deviceconnect: DeviceConnect) -> None:
        self.ctx = ctx
        self.deviceconnect = deviceconnect

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/_mendersim/health", self.health, OPEN),
            Route("GET", "/_mendersim/status", self.status, MANAGEMENT),
            Route("GET", "/_mendersim/faults", self.get_faults, MANAGEMENT),
            Route("PUT", "/_mendersim/faults", self.put_faults, MANAGEMENT),
        ]

    async def health(self, request: web.Request) -> web.Response:
        """Answers while the process serves; no fault family, so faults never make it fail."""
        return replies.json_response({"status": "ok"})

    async def status(self, request: web.Request) -> web.Response:
        summary = self.ctx.state.summary()
        summary["deviceconnect"] = self.deviceconnect.status()
        summary["requests"] = {key: dict(codes) for key, codes in self.ctx.requests.items()}
        return replies.json_response(summary)

    async def get_faults(self, request: web.Request) -> web.Response:
        return replies.json_response(self.ctx.faults.settings.to_json())

    async def put_faults(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
            settings = self.ctx.faults.settings.updated(data, "PUT /_mendersim/faults")
        except ValueError:
            return replies.error(400, "faults: body is not JSON", request)
        except ConfigError as exc:
            return replies.error(400, str(exc), request)
        self.ctx.faults.apply(settings, time.monotonic())
        log.info("faults changed: %s", settings.to_json())
        return replies.json_response(settings.to_json())
