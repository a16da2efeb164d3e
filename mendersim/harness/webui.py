"""The Fleet tab of Locust's web UI, and the JSON it is built from.

Locust's UI renders extra tabs declared in `template_args["extended_tabs"]` as tables whose rows
come with every `/stats/requests` poll (`extended_stats`), so the tab is live without a page of
our own. `/mendersim/fleet` serves the full snapshot as JSON for scripts and dashboards.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request

from mendersim.harness.fleetview import FleetView
from mendersim.harness.snapshot import FleetSnapshot

TAB = "fleet"


def fleet_rows(snapshot: FleetSnapshot, lag_warning: str | None) -> list[dict[str, str]]:
    """The tab's table: one row per figure, grouped by a prefix users can scan."""
    rows: list[tuple[str, str]] = [("users", str(snapshot.users))]
    if snapshot.workers:
        rows.append(("workers", str(snapshot.workers)))
    rows += [(f"devices: {k}", str(v)) for k, v in sorted(snapshot.devices_by_status.items())]
    rows += [
        (f"deployments in progress: {k}", str(v))
        for k, v in sorted(snapshot.deployments_by_state.items())
    ]
    rows += [(f"outcome: {k}", str(v)) for k, v in sorted(snapshot.outcomes.items())]
    rate = snapshot.success_rate()
    if rate is not None:
        rows.append(("deployment success rate", f"{rate:.1%}"))
    rows.append(("downloaded", f"{snapshot.download_bytes / 1e6:.1f} MB"))
    if snapshot.download_seconds > 0:
        kbps = snapshot.download_bytes / 1000 / snapshot.download_seconds
        rows.append(("download throughput per device", f"{kbps:.0f} kB/s"))
    rows.append(("scheduler lag p99 (worst worker)", f"{snapshot.scheduler_lag_p99_s:.3f} s"))
    rows.append(("scheduler lag max", f"{snapshot.scheduler_lag_max_s:.3f} s"))
    if lag_warning:
        rows.append(("WARNING", lag_warning))
    if snapshot.rollout_targets:
        rows.append(("rollout", f"{snapshot.rollout_done} of {snapshot.rollout_targets} finished"))
        if snapshot.rollout_finished_s is not None:
            rows.append(("rollout duration", f"{snapshot.rollout_finished_s:.1f} s"))
    return [{"name": name, "value": value} for name, value in rows]


def install(web_ui: Any, view: FleetView) -> None:
    web_ui.template_args["extended_tabs"] = [{"title": "Fleet", "key": TAB}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB,
            "structure": [{"key": "name", "title": "Figure"}, {"key": "value", "title": "Value"}],
        }
    ]
    blueprint = Blueprint("mendersim", __name__, url_prefix="/mendersim")

    @blueprint.route("/fleet")
    def fleet_json() -> Response:
        return jsonify({**asdict(view.snapshot()), "lag_warning": view.lag_warning})

    web_ui.app.register_blueprint(blueprint)

    @web_ui.app.after_request
    def add_fleet_tab(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        body = json.loads(response.get_data())
        body["extended_stats"] = [
            {"key": TAB, "data": fleet_rows(view.snapshot(), view.lag_warning)}
        ]
        response.set_data(json.dumps(body))
        return response
