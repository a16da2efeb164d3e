"""Assembles the aiohttp application and runs it (with uvloop when importable)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from aiohttp import web

from mendersim.errors import MendersimError
from mendersim.server.admin import Admin
from mendersim.server.commits import CommitLog
from mendersim.server.config import ServerConfig
from mendersim.server.context import ServerContext
from mendersim.server.deployments import DeviceDeployments
from mendersim.server.deviceauth import DeviceAuth
from mendersim.server.deviceconfig import DeviceConfig
from mendersim.server.deviceconnect import DeviceConnect
from mendersim.server.faults import FaultInjector
from mendersim.server.inventory import Inventory
from mendersim.server.limits import make_limits_middleware
from mendersim.server.management import Management
from mendersim.server.middleware import RouteInfo, make_middleware
from mendersim.server.persistence import Persistence
from mendersim.server.state import ServerState
from mendersim.server.storage import ArtifactStore
from mendersim.server.tokens import TokenIssuer

log = logging.getLogger(__name__)

CONTEXT = web.AppKey("context", ServerContext)


def build_app(config: ServerConfig, data_dir: Path) -> web.Application:
    """The application over `data_dir`; state comes from `config.db` when it exists."""
    state = ServerState(config.acceptance, config.max_devices)
    persistence = Persistence(config.db) if config.db else None
    secrets_ = persistence.load(state) if persistence else {}
    jwt_secret = secrets_.get("jwt_secret") or secrets.token_bytes(32)
    link_secret = secrets_.get("link_secret") or secrets.token_bytes(32)
    store = ArtifactStore(
        data_dir / "artifacts",
        link_secret,
        base_url=config.base_url,
        lifetime=config.presign_lifetime,
        rate=config.download_rate,
        state=state,
    )
    ctx = ServerContext(
        config=config,
        state=state,
        tokens=TokenIssuer(jwt_secret, config.jwt_lifetime),
        store=store,
        faults=FaultInjector(config.faults, time.monotonic()),
    )
    deviceconnect = DeviceConnect(ctx)
    routes = [
        *DeviceAuth(ctx).routes(),
        *Inventory(ctx).routes(),
        *DeviceConfig(ctx).routes(),
        *deviceconnect.routes(),
        *DeviceDeployments(ctx).routes(),
        *store.routes(),
        *Management(ctx).routes(),
        *Admin(ctx, deviceconnect).routes(),
    ]
    infos: dict[object, RouteInfo] = {}
    app = web.Application(client_max_size=1024**4)
    for route in routes:
        added = app.router.add_route(route.method, route.path, route.handler)
        infos[added] = RouteInfo(f"{route.method} {route.path}", route.kind, route.endpoint)
    app.middlewares.append(make_middleware(ctx, infos))
    app.middlewares.append(make_limits_middleware(config.max_upload, config.client_timeout))
    app[CONTEXT] = ctx
    app.on_shutdown.append(deviceconnect.close_all)
    if persistence is not None:
        persistence.remember_secrets(jwt_secret=jwt_secret, link_secret=link_secret)
        commits = CommitLog(persistence, state, config.flush_interval)
        ctx.durable = commits.durable
        app.cleanup_ctx.append(_saving(commits))
    return app


def _saving(commits: CommitLog):
    """Save what changed every flush interval or at once for a durable answer, and at shutdown."""

    async def context(app: web.Application):
        task = asyncio.create_task(commits.run())
        yield
        task.cancel()
        commits.save()
        commits.persistence.close()
        log.info("state saved to %s", commits.persistence.path)

    return context


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


SOMAXCONN = Path("/proc/sys/net/core/somaxconn")
DEFAULT_BACKLOG = 4096  # Linux's somaxconn since 5.4, where the kernel's limit cannot be read


def listen_backlog() -> int:
    """The longest accept queue the kernel allows (net.core.somaxconn), not aiohttp's 128:
    a fleet whose polls arrive together would otherwise see refused and reset connections."""
    try:
        return max(int(SOMAXCONN.read_text()), 128)
    except (OSError, ValueError):
        return DEFAULT_BACKLOG


def serve(config: ServerConfig) -> None:
    """Run until SIGTERM/SIGINT; the state is flushed on the way out."""
    temporary = config.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="mendersim-server-")) if temporary else config.data_dir
    try:
        app = build_app(config, data_dir)
        loop = _event_loop()
        try:
            web.run_app(
                app,
                host=config.host,
                port=config.port,
                access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
                print=None,
                keepalive_timeout=config.client_timeout,  # also closes half-sent requests
                backlog=listen_backlog(),
                loop=loop,
                handle_signals=True,
            )
        except OSError as exc:
            raise MendersimError(
                f"serve: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
            ) from None
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
