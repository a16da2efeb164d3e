"""The harness options: Locust flags, `MENDERSIM_*` variables and locust.conf keys."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from mendersim.device.deviceconnect import PING_EVERY_S
from mendersim.device.traffic import parse_overrides
from mendersim.errors import ConfigError
from mendersim.harness.config import mqtt_options, secrets

# Fixed for the life of the process: a new swarm keeps the values the process started with.
FIXED = ("db", "fleet", "worker_id", "log_file", "log_level", "server_log")
CONNECTION_POLICIES = ("fresh", "keepalive")
SCENARIOS = ("steady", "ramp", "rollout")
# Options each process keeps for itself: the master must not hand its own to the workers.
START_PACING = ("adaptive", "off")
PER_PROCESS = ("mendersim_worker_id", "mendersim_log_file", "mendersim_log_level")


def add_arguments(parser: Any) -> None:
    """Register the options on Locust's parser (configargparse: env vars and config files too)."""

    def option(name: str, **kwargs: Any) -> None:
        env = "MENDERSIM_" + name.removeprefix("--mendersim-").upper().replace("-", "_")
        parser.add_argument(name, env_var=env, **kwargs)

    # Fixed for the life of the process (the store is open, the log configured): not offered
    # in the web UI's start form, where a changed value could not take effect.
    option(
        "--mendersim-db",
        default="fleet.db",
        include_in_web_ui=False,
        help="Seed store (SQLite) holding the fleet",
    )
    option(
        "--mendersim-fleet",
        default="",
        include_in_web_ui=False,
        help="Fleet config (YAML); seeded into --mendersim-db first when that file does not exist",
    )
    option(
        "--mendersim-profiles",
        default="",
        help="Comma-separated industry profiles to simulate (default: every device in the store)",
    )
    option(
        "--mendersim-time-scale",
        type=float,
        default=1.0,
        help="Multiplier of every device interval and duration (1 = production timing)",
    )
    option(
        "--mendersim-connection",
        choices=CONNECTION_POLICIES,
        default="fresh",
        help="fresh: a new connection per exchange (as Mender's C++ client); keepalive: one "
        "connection per device, kept while idle for less than --mendersim-idle-timeout",
    )
    option(
        "--mendersim-idle-timeout",
        type=float,
        default=90.0,
        help="Seconds (device time, scaled by the time scale) a keepalive connection may stay "
        "idle before it is closed",
    )
    option(
        "--mendersim-scenario",
        choices=SCENARIOS,
        default="steady",
        help="steady: start-up spread over one poll interval; ramp: over --mendersim-ramp-window; "
        "rollout: once the fleet is up, deploy to a share of it and time the rollout",
    )
    option(
        "--mendersim-start-pacing",
        choices=START_PACING,
        default="adaptive",
        help="adaptive: first authentications admitted at the rate each process keeps with "
        "scheduler lag under --mendersim-lag-bound; off: every device starts when its spread "
        "says, however many at once",
    )
    option(
        "--mendersim-ramp-window",
        type=float,
        default=0.0,
        help="Seconds (real time) over which device start-up spreads in the ramp scenario",
    )
    option(
        "--mendersim-rollout-share",
        type=float,
        default=0.1,
        help="Share of the accepted devices a rollout deploys to (0 < share <= 1)",
    )
    option(
        "--mendersim-rollout-artifact-size",
        type=int,
        default=1_048_576,
        help="Payload bytes of the artifact the rollout uploads",
    )
    option(
        "--mendersim-rollout-delay",
        type=float,
        default=120.0,
        help="Seconds after spawning completes at which the rollout starts even if some devices "
        "are not accepted yet",
    )
    option(
        "--mendersim-mgmt-token",
        default="",
        is_secret=True,
        help="Management API token of a real server (for the rollout scenario); prefer the "
        "environment variable or --mendersim-mgmt-token-file: a command line is visible in ps",
    )
    option(
        "--mendersim-mgmt-token-file",
        default="",
        include_in_web_ui=False,
        help="File holding the management API token (read at each test start)",
    )
    option(
        "--mendersim-tenant-token",
        default="",
        is_secret=True,
        help="Tenant token the devices send (hosted Mender); overrides the fleet config's",
    )
    option(
        "--mendersim-tenant-token-file",
        default="",
        include_in_web_ui=False,
        help="File holding the tenant token (read at each test start)",
    )
    option(
        "--mendersim-accept-timeout",
        type=float,
        default=0.0,
        help="Seconds after spawning within which every device should be accepted, else the "
        "harness warns (default 0: three poll intervals at the time scale)",
    )
    option(
        "--mendersim-lag-bound",
        type=float,
        default=1.0,
        help="Scheduler lag p99 (seconds) above which the harness warns that it is saturated",
    )
    option(
        "--mendersim-log-file",
        default="",
        include_in_web_ui=False,
        help="Rotating log of the simulator's decisions (default: the fleet config's "
        "logging.file, else simulator.log); the console keeps warnings only",
    )
    option(
        "--mendersim-log-level",
        default="",
        include_in_web_ui=False,
        help="Level of --mendersim-log-file (default: the fleet config's logging.level, else INFO)",
    )
    option(
        "--mendersim-server-log",
        default="",
        include_in_web_ui=False,
        help="File the embedded server's log is appended to (default: server.log in the run "
        "folder)",
    )
    option(
        "--mendersim-traffic",
        default="",
        help="Overrides of every profile's traffic, e.g. tier=micro,churn=off,deviceconfig=on "
        "(tier: standard, micro or system; churn: inventory churn on or off; "
        "deviceconfig: configuration fetch and report on or off; "
        "deviceconnect: the mender-connect websocket on or off; "
        "update_control_map: control maps honoured as the Go client 3.5 does, on or off)",
    )
    option(
        "--mendersim-deviceconnect-ping",
        type=float,
        default=PING_EVERY_S,
        help="Seconds between a device's pings on its deviceconnect websocket (real time, not "
        "scaled; its read deadline is 10/9 of it, as mender-connect's)",
    )
    option(
        "--mendersim-worker-id",
        default="",
        include_in_web_ui=False,
        help="Stable worker name for device leases (default: Locust's worker id); a restarted "
        "worker with the same name gets its devices back",
    )
    mqtt_options.add_arguments(option)


@dataclass(frozen=True, slots=True)
class HarnessOptions:
    """The options after validation; what the rest of the harness reads."""

    db: str
    fleet: str
    profiles: tuple[str, ...]
    time_scale: float
    connection: str
    scenario: str
    ramp_window: float
    rollout_share: float
    rollout_artifact_size: int
    rollout_delay: float
    mgmt_token: str
    tenant_token: str
    accept_timeout: float
    lag_bound: float
    worker_id: str
    log_file: str
    log_level: str
    server_log: str
    traffic: tuple[tuple[str, str], ...] = ()
    deviceconnect_ping: float = PING_EVERY_S
    idle_timeout: float = 90.0
    start_pacing: str = "adaptive"

    def reread(self, parsed: Any) -> HarnessOptions:
        """The options of a new swarm (the web UI's start form may have changed them)."""
        current = {**vars(parsed), **{f"mendersim_{name}": getattr(self, name) for name in FIXED}}
        return HarnessOptions.from_parsed(argparse.Namespace(**current))

    @classmethod
    def from_parsed(cls, parsed: Any) -> HarnessOptions:
        """Validate Locust's parsed options; raises ConfigError naming the option."""

        def get(name: str) -> Any:
            return getattr(parsed, "mendersim_" + name)

        def positive(name: str, *, allow_zero: bool = False) -> float:
            value = float(get(name))
            if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
                bound = "zero or more" if allow_zero else "more than zero"
                raise ConfigError(f"--mendersim-{name.replace('_', '-')}", f"must be {bound}")
            return value

        share = float(get("rollout_share"))
        if not 0 < share <= 1:
            raise ConfigError("--mendersim-rollout-share", f"{share} is not in (0, 1]")
        for name, allowed in (
            ("connection", CONNECTION_POLICIES),
            ("scenario", SCENARIOS),
            ("start_pacing", START_PACING),
        ):
            if get(name) not in allowed:
                raise ConfigError(
                    f"--mendersim-{name.replace('_', '-')}",
                    f"{get(name)!r} is not one of {', '.join(allowed)}",
                )
        if get("scenario") == "ramp" and not float(get("ramp_window") or 0) > 0:
            raise ConfigError("--mendersim-ramp-window", "the ramp scenario needs a window > 0 s")
        if not get("db"):
            raise ConfigError("--mendersim-db", "a seed store path is required")
        profiles = tuple(p.strip() for p in str(get("profiles") or "").split(",") if p.strip())
        return cls(
            db=str(get("db")),
            fleet=str(get("fleet") or ""),
            profiles=profiles,
            time_scale=positive("time_scale"),
            connection=str(get("connection")),
            scenario=str(get("scenario")),
            ramp_window=positive("ramp_window", allow_zero=True),
            rollout_share=share,
            rollout_artifact_size=int(positive("rollout_artifact_size")),
            rollout_delay=positive("rollout_delay", allow_zero=True),
            mgmt_token=secrets.token_from(
                str(get("mgmt_token") or ""),
                str(getattr(parsed, "mendersim_mgmt_token_file", "") or ""),
                "--mendersim-mgmt-token-file",
            ),
            tenant_token=secrets.token_from(
                str(getattr(parsed, "mendersim_tenant_token", "") or ""),
                str(getattr(parsed, "mendersim_tenant_token_file", "") or ""),
                "--mendersim-tenant-token-file",
            ),
            accept_timeout=positive("accept_timeout", allow_zero=True),
            lag_bound=positive("lag_bound"),
            worker_id=str(get("worker_id") or ""),
            log_file=str(get("log_file") or ""),
            log_level=str(get("log_level") or ""),
            server_log=str(getattr(parsed, "mendersim_server_log", "") or ""),
            traffic=parse_overrides(str(getattr(parsed, "mendersim_traffic", "") or "")),
            deviceconnect_ping=positive("deviceconnect_ping")
            if hasattr(parsed, "mendersim_deviceconnect_ping")
            else PING_EVERY_S,
            idle_timeout=positive("idle_timeout"),
            start_pacing=str(get("start_pacing")),
        )
