"""`mendersim serve`: the embedded Mender-compatible server."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path

from mendersim.errors import ConfigError
from mendersim.server.config import ServerConfig
from mendersim.server.faults import FaultSettings, compile_settings
from mendersim.server.state import ACCEPTANCE_MODES
from mendersim.units import parse_duration, parse_size

TOKEN_ENV = "MENDERSIM_MGMT_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the embedded Mender-compatible server",
        description="Serve Mender's device API and the management subset a load test needs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    parser.add_argument(
        "--mgmt-token-file",
        type=Path,
        help=f"file holding the management API's bearer token (or env {TOKEN_ENV}; "
        "default: random, printed); never give the token itself on a command line",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where artifacts are stored (default: DB.data with --db, else a temp dir)",
    )
    parser.add_argument("--db", type=Path, help="SQLite file keeping state across restarts")
    parser.add_argument(
        "--db-flush-interval", default="5s", help="write-behind interval of --db (5s)"
    )
    parser.add_argument(
        "--acceptance",
        choices=ACCEPTANCE_MODES,
        default="auto",
        help="auto: accept new devices; preauth: only preauthorized ones; manual: stay pending",
    )
    parser.add_argument("--max-devices", type=int, help="accepted-device limit (401 beyond it)")
    parser.add_argument("--jwt-lifetime", default="1w", help="device token lifetime (1w)")
    parser.add_argument(
        "--v2-next",
        choices=("on", "off"),
        default="on",
        help="answer v2 deployments/next (on, as hosted Mender) or 404 (off, as open source)",
    )
    parser.add_argument("--download-rate", help="bandwidth cap per download, BYTES/s")
    parser.add_argument("--presign-lifetime", default="24h", help="download link lifetime")
    parser.add_argument("--public-url", help="base URL put in download links")
    faults = parser.add_argument_group("faults (device API)")
    faults.add_argument("--latency", help="50ms | normal:MEAN,SD | uniform:LOW,HIGH | exp:MEAN")
    faults.add_argument(
        "--error-rate", action="append", default=[], help="ENDPOINT=SHARE[:500|503]"
    )
    faults.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        help="ENDPOINT=SHARE:RETRY_AFTER_S or ENDPOINT=RATE/s (429)",
    )
    faults.add_argument("--drop-rate", action="append", default=[], help="ENDPOINT=SHARE")
    faults.add_argument(
        "--maintenance", action="append", default=[], help="START+DURATION[@EVERY] (503)"
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of fault decisions")
    parser.add_argument(
        "--max-upload", default="4GiB", help="largest artifact upload, bytes (4GiB)"
    )
    parser.add_argument(
        "--client-timeout",
        default="30s",
        help="time a client may take to send a request, or keep a connection idle (30s)",
    )
    parser.add_argument(
        "--deviceconnect-ping",
        default="54s",
        help="ping interval of deviceconnect websockets; silent ones close after 10/9 of it (54s)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--log-level", default="INFO", help="log level (INFO)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if not 0 <= args.port <= 65535:
        raise ConfigError("--port", f"{args.port} is not a port number")
    if args.max_devices is not None and args.max_devices < 1:
        raise ConfigError("--max-devices", "must be at least 1")
    if args.data_dir is not None:
        _check_data_dir(args.data_dir)
    if args.db is not None and not args.db.parent.is_dir():
        raise ConfigError("--db", f"directory {args.db.parent} does not exist")
    faults = FaultSettings(
        latency=args.latency,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit,
        drop_rate=args.drop_rate,
        maintenance=args.maintenance,
        seed=args.fault_seed,
    )
    compile_settings(faults, 0.0)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        mgmt_token=management_token(args) or secrets.token_urlsafe(24),
        # With --db, artifact files must outlive the process too: keep them beside the file.
        data_dir=args.data_dir or (args.db.with_name(args.db.name + ".data") if args.db else None),
        db=args.db,
        flush_interval=parse_duration(args.db_flush_interval, "--db-flush-interval"),
        acceptance=args.acceptance,
        max_devices=args.max_devices,
        jwt_lifetime=parse_duration(args.jwt_lifetime, "--jwt-lifetime"),
        v2_next=args.v2_next == "on",
        download_rate=(
            parse_size(args.download_rate, "--download-rate") if args.download_rate else None
        ),
        presign_lifetime=parse_duration(args.presign_lifetime, "--presign-lifetime"),
        public_url=args.public_url,
        faults=faults,
        access_log=args.access_log,
        max_upload=parse_size(args.max_upload, "--max-upload"),
        client_timeout=parse_duration(args.client_timeout, "--client-timeout"),
        deviceconnect_ping=parse_duration(args.deviceconnect_ping, "--deviceconnect-ping"),
    )
    for name, value in (
        ("--db-flush-interval", config.flush_interval),
        ("--client-timeout", config.client_timeout),
        ("--deviceconnect-ping", config.deviceconnect_ping),
        ("--max-upload", config.max_upload),
        ("--jwt-lifetime", config.jwt_lifetime),
        ("--presign-lifetime", config.presign_lifetime),
    ):
        if value <= 0:
            raise ConfigError(name, "must be longer than zero")
    return config


def _check_data_dir(path: Path) -> None:
    """The artifact directory must exist or be creatable, and be writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError("--data-dir", f"{path} is not a directory") from None
    except OSError as exc:
        raise ConfigError("--data-dir", f"cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("--data-dir", f"{path} is not writable")


def management_token(args: argparse.Namespace) -> str | None:
    """The token from --mgmt-token-file, else from the environment."""
    if args.mgmt_token_file is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        token = args.mgmt_token_file.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        where = f"cannot read {args.mgmt_token_file}: {reason}"
        raise ConfigError("--mgmt-token-file", where) from None
    if not token:
        raise ConfigError("--mgmt-token-file", f"{args.mgmt_token_file} is empty")
    return token


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(level, int):
        raise ConfigError("--log-level", f"unknown level {args.log_level!r}")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mendersim.server.app import serve  # aiohttp only for this command
    from mendersim.server.lifeline import bind_to_parent

    bind_to_parent()
    given = args.mgmt_token_file is not None or os.environ.get(TOKEN_ENV)
    token_note = "" if given else f" (management token in {_keep_token(config)})"
    print(f"mendersim server on http://{config.host}:{config.port}{token_note}", file=sys.stderr)
    serve(config)
    return 0


def _keep_token(config: ServerConfig) -> Path:
    """Write a generated management token where only its owner can read it: printed, it would
    land in whatever log the console goes to."""
    folder = config.data_dir or Path(tempfile.mkdtemp(prefix="mendersim-token-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mgmt-token"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(config.mgmt_token + "\n")
    return path
