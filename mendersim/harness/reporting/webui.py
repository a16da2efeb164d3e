"""The Fleet tab of Locust's web UI, and the JSON it is built from.

Locust's UI renders extra tabs declared in `template_args["extended_tabs"]` as tables whose rows
come with every `/stats/requests` poll (`extended_stats`), so the tab is live without a page of
our own. `/mendersim/fleet` serves the full snapshot as JSON for scripts and dashboards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file
from locust.stats import RequestStats
from werkzeug.datastructures import ImmutableMultiDict

from mendersim.device.engine import PHASES
from mendersim.errors import ConfigError, MendersimError
from mendersim.harness.config import secrets
from mendersim.harness.coordination.fleetview import FleetView
from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting import stats
from mendersim.report.html import REPORT_FILE
from mendersim.telemetry.commander import COMMAND
from mendersim.telemetry.commands import COMMANDS

TAB = "fleet"


STATUS_ORDER = ("accepted", "not accepted", "rejected")
OUTCOME_ORDER = ("success", "failure", "already-installed", "noartifact", "aborted")


def _ordered(counts: dict[str, int], order: tuple[str, ...]) -> list[tuple[str, int]]:
    """Known keys in their life-cycle order first, then any other key alphabetically."""
    rank = {key: index for index, key in enumerate(order)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(order)), item[0]))


def fleet_rows(snapshot: FleetSnapshot, view: FleetView) -> list[dict[str, str]]:
    """The tab's table: one row per figure, in a fixed order (users, devices in life-cycle
    order, deployments, outcomes, downloads, generator, rollout, warnings)."""
    rows: list[tuple[str, str]] = [("users", str(snapshot.users))]
    if snapshot.workers:
        rows.append(("workers", str(snapshot.workers)))
    statuses = {key: 0 for key in STATUS_ORDER[:2]} | snapshot.devices_by_status
    rows += [(f"devices: {k} (this run)", str(v)) for k, v in _ordered(statuses, STATUS_ORDER)]
    rows += [
        (f"deployments in progress: {k}", str(v))
        for k, v in _ordered(snapshot.deployments_by_state, PHASES)
    ]
    rows += [(f"outcome: {k}", str(v)) for k, v in _ordered(snapshot.outcomes, OUTCOME_ORDER)]
    rate = snapshot.success_rate()
    if rate is not None:
        rows.append(("deployment success rate", f"{rate:.1%}"))
    rows.append(("downloaded", f"{snapshot.download_bytes / 1e6:.1f} MB"))
    if snapshot.download_seconds > 0:
        kbps = snapshot.download_bytes / 1000 / snapshot.download_seconds
        rows.append(("download throughput per device", f"{kbps:.0f} kB/s"))
    rows.append(("scheduler lag p99 (worst worker)", f"{snapshot.scheduler_lag_p99_s:.3f} s"))
    rows.append(("scheduler lag max", f"{snapshot.scheduler_lag_max_s:.3f} s"))
    if snapshot.rollout_targets:
        rows.append(("rollout", f"{snapshot.rollout_done} of {snapshot.rollout_targets} finished"))
        if snapshot.rollout_finished_s is not None:
            rows.append(("rollout duration", f"{snapshot.rollout_finished_s:.1f} s"))
    rows.append(("roll out now", "form at /mendersim/rollout (share, artifact size, token)"))
    rows.append(("send a command", "form at /mendersim/command (MQTT: command, share, args)"))
    for warning in (view.accept_warning, view.lag_warning):
        if warning:
            rows.append(("WARNING", warning))
    return [{"name": name, "value": value} for name, value in rows]


ROLLOUT_FORM = """<!doctype html><title>mendersim: roll out</title>
<h1>Roll out an update to the running fleet</h1>
<form method="post">
<p><label>Share of the accepted devices <input name="share" value="0.1"></label>
<p><label>Artifact payload bytes <input name="artifact_size" value="1048576"></label>
<p><label>Management token (empty: the embedded server's, or the run's option)
<input name="token" type="password" autocomplete="off"></label>
<p><button>Roll out</button></form>"""

# Starts a rollout of (share, artifact size, token or "") now; returns what the user is told.
StartRollout = Callable[[float, int, str], str]

COMMAND_FORM = """<!doctype html><title>mendersim: command</title>
<h1>Send a command over MQTT to a share of the fleet</h1>
<form method="post">
<p><label>Command <select name="command">{options}</select></label>
<p><label>Share of the devices known over MQTT <input name="share" value="0.1"></label>
<p><label>Arguments (a JSON object; set-config applies them) <input name="args" value="{{}}">
</label>
<p><button>Send</button></form>"""

# Sends (command, share, args) now; returns what the user is told.
SendCommand = Callable[[str, float, dict[str, Any]], str]


def command_rows(requests: RequestStats) -> list[dict[str, str]]:
    """The commands' round trips (sent to acknowledged), from Locust's request statistics."""
    entry = requests.entries.get((COMMAND, "MQTT"))
    if entry is None or not entry.num_requests:
        return []
    p50, p99 = (entry.get_response_time_percentile(p) for p in (0.5, 0.99))
    value = f"{entry.num_requests} × median {p50:g} ms, p99 {p99:g} ms"
    return [{"name": "command round trip", "value": f"{value}, {entry.num_failures} failed"}]


def measure_rows(measured: RequestStats) -> list[dict[str, str]]:
    """DEVICE and HARNESS figures, which Locust's own tables no longer mix with requests."""
    rows = []
    for (name, kind), entry in sorted(measured.entries.items()):
        if not entry.num_requests:
            continue
        value = f"{entry.num_requests}"
        if entry.max_response_time:
            p50 = entry.get_response_time_percentile(0.5)
            p95 = entry.get_response_time_percentile(0.95)
            unit = "kB/s" if name == stats.DOWNLOAD_THROUGHPUT else "ms"
            value += f" × median {p50:g} {unit}, p95 {p95:g} {unit}"
        rows.append({"name": f"{kind}: {name}", "value": value})
    return rows


def install(
    web_ui: Any,
    view: FleetView,
    start_rollout: StartRollout,
    run_dir: Path,
    measured: RequestStats,
    send_command: SendCommand | None = None,
) -> None:
    """The Fleet tab, its JSON, the "Roll out" and "Command" actions, the run report, and the
    secrets kept off the page."""
    _keep_secrets_off_the_page(web_ui)
    web_ui.template_args["extended_tabs"] = [{"title": "Fleet", "key": TAB}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB,
            "structure": [{"key": "name", "title": "Figure"}, {"key": "value", "title": "Value"}],
        }
    ]
    blueprint = Blueprint("mendersim", __name__, url_prefix="/mendersim")

    @blueprint.route("/report")
    def report() -> Response:
        path = run_dir / REPORT_FILE
        if not path.is_file():
            return Response("the run report is written when the run ends\n", 404)
        return send_file(path.resolve(), mimetype="text/html")

    @blueprint.route("/fleet")
    def fleet_json() -> Response:
        return jsonify(
            {
                **asdict(view.snapshot()),
                "lag_warning": view.lag_warning,
                "accept_warning": view.accept_warning,
            }
        )

    @blueprint.route("/rollout", methods=["GET", "POST"])
    def rollout() -> Response | str:
        if request.method == "GET":
            return ROLLOUT_FORM
        posted = request.get_json(silent=True) or request.form  # JSON or the form
        try:
            share = float(posted.get("share", 0.1))
            size = int(posted.get("artifact_size", 1 << 20))
            message = start_rollout(share, size, str(posted.get("token") or ""))
        except (ValueError, TypeError, ConfigError) as exc:
            return jsonify({"success": False, "message": f"roll out: {exc}"}), 400
        except MendersimError as exc:
            return jsonify({"success": False, "message": str(exc)}), 409
        return jsonify({"success": True, "message": message})

    @blueprint.route("/command", methods=["GET", "POST"])
    def command() -> Response | str:
        if request.method == "GET":
            return COMMAND_FORM.format(options="".join(f"<option>{c}</option>" for c in COMMANDS))
        posted = request.get_json(silent=True) or request.form  # JSON or the form
        try:
            share = float(posted.get("share", 0.1))
            args = posted.get("args") or {}
            if isinstance(args, str):  # the form's text field
                args = json.loads(args)
            if not isinstance(args, dict):
                raise ConfigError("args", "must be a JSON object")
            if send_command is None:
                raise ConfigError("command", "not available in this run")
            message = send_command(str(posted.get("command", "ping")), share, args)
        except (ValueError, TypeError, ConfigError) as exc:
            return jsonify({"success": False, "message": f"command: {exc}"}), 400
        except MendersimError as exc:
            return jsonify({"success": False, "message": str(exc)}), 409
        return jsonify({"success": True, "message": message})

    web_ui.app.register_blueprint(blueprint)

    @web_ui.app.after_request
    def add_fleet_tab(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        body = json.loads(response.get_data())
        body["extended_stats"] = [
            {
                "key": TAB,
                "data": [
                    *fleet_rows(view.snapshot(), view),
                    *measure_rows(measured),
                    *command_rows(web_ui.environment.stats),
                    {"name": "run report", "value": f"/mendersim/report ({run_dir / REPORT_FILE})"},
                ],
            }
        ]
        response.set_data(json.dumps(body))
        return response


def _keep_secrets_off_the_page(web_ui: Any) -> None:
    """Blank secret values in the start page; an empty secret field posted keeps the token."""
    render_arguments = web_ui.update_template_args

    def update_template_args() -> None:
        render_arguments()
        secrets.blank_secrets(web_ui.template_args.get("extra_options") or {})

    web_ui.update_template_args = update_template_args
    update_template_args()

    @web_ui.app.before_request
    def keep_unposted_secrets() -> None:
        if request.method == "POST" and request.path.endswith("/swarm"):
            request.form = ImmutableMultiDict(secrets.posted_without_blanks(request.form))
