"""The run report: one self-contained HTML file with plotly.js inline, so it opens offline.

plotly (the Python package) ships plotly.js; the page embeds that copy once and each chart as
JSON, and loads nothing from the network (fonts are the system's, MathJax and the mode bar's
logo link are off). Sections and figures carry `id`/`data-*` attributes so tests and scripts can
read them back.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

from mendersim.report.figures import ROLLOUT_MARKS, RunFigures, load
from mendersim.report.page import (
    Page,
    areas,
    esc,
    num,
    percentile_chart,
    series_rows,
    table,
)
from mendersim.report.telemetry import telemetry_section

REPORT_FILE = "mendersim-report.html"  # beside Locust's own report.html
TEMPLATE = "plotly_white"
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:72em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .6em}
th{background:#f4f4f4;text-align:left}td.n{text-align:right}.pass{color:#070}.fail{color:#b00}
.chart{height:320px}@media print{.chart{break-inside:avoid}h2{break-before:auto}}
"""


def _run_section(page: Page, run: RunFigures) -> None:
    record = run.record
    started = dt.datetime.fromtimestamp(record["started"], dt.timezone.utc)
    page.add('<section id="run"><h2>The run</h2>')
    page.add(
        table(
            "run-facts",
            ["figure", "value"],
            [
                ["target server", record["host"]],
                ["started (UTC)", started.strftime("%Y-%m-%d %H:%M:%S")],
                ["duration (s)", round(run.duration_s, 1)],
                ["devices in the fleet", record["fleet_size"]],
                ["users at the end", record["fleet"]["users"]],
                ["workers (most at once)", max(f["workers"] for f in run.fleet)],
                ["mendersim", record["versions"]["mendersim"]],
                ["locust", record["versions"]["locust"]],
            ],
        )
    )
    store = record["store"]
    page.add("<h3>Fleet</h3>")
    page.add(
        table(
            "fleet-makeup",
            ["profile / key type", "devices"],
            [[k, n] for k, n in store["by_profile_key"].items()],
        )
    )
    page.add("<h3>Options</h3>")
    page.add(table("options", ["option", "value"], [[k, v] for k, v in record["options"].items()]))
    verdicts = record.get("thresholds")
    page.add("<h3>Threshold verdict</h3>")
    if verdicts is None:
        page.add('<p id="verdict">No thresholds were given.</p>')
    else:
        passed = all(v["passed"] for v in verdicts)
        page.add(
            f'<p id="verdict" class="{"pass" if passed else "fail"}">'
            f"{'PASS' if passed else 'FAIL'}: {sum(v['passed'] for v in verdicts)} of "
            f"{len(verdicts)} rules passed</p>"
        )
        page.add(
            table(
                "thresholds",
                ["rule", "limit", "measured", "verdict"],
                [[v["rule"], v["limit"], v["measured"], v["verdict"]] for v in verdicts],
            )
        )
    page.add("</section>")


def _fleet_section(page: Page, run: RunFigures) -> None:
    page.add('<section id="fleet"><h2>The fleet over time</h2>')
    page.add(
        table(
            "fleet-final",
            ["status by the run's server at the end (store)", "devices"],
            [[k, n] for k, n in sorted(run.record["store"]["by_status"].items())],
        )
    )
    page.chart(
        "chart-devices",
        areas(run.t, [f["devices_by_status"] for f in run.fleet]),
        "Devices by status",
        "devices",
    )
    page.chart(
        "chart-deployments",
        areas(run.t, [f["deployments_by_state"] for f in run.fleet]),
        "Deployments in progress by state",
        "devices",
    )
    share = go.Figure(go.Scatter(x=run.t, y=run.accepted_share(), name="accepted share"))
    share.update_yaxes(range=[0, 1.05], tickformat=".0%")
    page.chart("chart-accepted", share, "Accepted share of the fleet", "share")
    lag = go.Figure(
        [
            go.Scatter(x=run.t, y=[f["scheduler_lag_p99_s"] for f in run.fleet], name="p99"),
            go.Scatter(x=run.t, y=[f["scheduler_lag_max_s"] for f in run.fleet], name="max"),
        ]
    )
    page.chart("chart-lag", lag, "Scheduler lag of the load generator (worst worker)", "s")
    page.add("</section>")


def _rollout_section(page: Page, run: RunFigures) -> None:
    final = run.record["fleet"]
    page.add('<section id="rollout"><h2>The rollout</h2>')
    targets = final.get("rollout_targets") or 0
    if targets:
        marks = run.rollout_marks()
        page.add(
            table(
                "rollout-marks",
                ["targets finished", "seconds after the deployment was created"],
                [[f"{round(m * 100)} %", num(marks[m])] for m in ROLLOUT_MARKS],
            )
        )
        progress = go.Figure(
            go.Scatter(
                x=run.t, y=[f.get("rollout_done", 0) for f in run.fleet], name="devices finished"
            )
        )
        progress.add_hline(y=targets, line_dash="dot", annotation_text=f"{targets} targets")
        poll = run.record.get("poll_interval_s")
        if poll:
            start = final["rollout_started_at"] - run.record["started"]
            for k in range(1, 1 + int((run.t[-1] - start) // poll)):
                progress.add_vline(x=start + k * poll, line_dash="dot", line_color="#999")
        title = "Rollout progress" + (f" (dotted: poll interval {poll:g} s)" if poll else "")
        page.chart("chart-rollout", progress, title, "devices")
    else:
        page.add("<p>This run had no rollout.</p>")
    outcomes = final["outcomes"]
    page.add("<h3>Outcomes</h3>")
    page.add(table("outcomes", ["outcome", "deployments"], sorted(map(list, outcomes.items()))))
    bars = go.Figure(go.Bar(x=list(outcomes), y=list(outcomes.values())))
    page.chart("chart-outcomes", bars, "Deployment outcomes", "deployments", "")
    page.add("<h3>Failure reasons</h3>")
    failed = [d for d in run.record["store"]["deployments"] if d["result"] == "failure"]
    reasons = [[d["reason"] or "(none given)", d["count"]] for d in failed]
    page.add(table("failure-reasons", ["reason", "deployments"], reasons))
    if reasons:
        bars = go.Figure(go.Bar(x=[r for r, _ in reasons], y=[n for _, n in reasons]))
        page.chart("chart-failure-reasons", bars, "Failed deployments by reason", "deployments", "")
    _failure_logs(page, run.record.get("failure_logs"))
    throughput = run.measure("download throughput (kB/s)")
    if throughput is not None:
        hist = {int(k): v for k, v in throughput.total["rt"].items()}
        keys = sorted(hist)
        bars = go.Figure(go.Bar(x=keys, y=[hist[k] for k in keys], name="downloads"))
        page.chart("chart-throughput", bars, "Download throughput per device", "downloads", "kB/s")
    page.add("</section>")


def _failure_logs(page: Page, logs: dict[str, Any] | None) -> None:
    """The error lines the failed devices uploaded, one row per distinct message."""
    page.add("<h3>What the failed devices logged</h3>")
    if logs is None:
        page.add('<p id="failure-logs">No rollout, so no failure logs were read.</p>')
        return
    if "error" in logs:
        page.add(f'<p id="failure-logs">Failure logs not read: {esc(logs["error"])}</p>')
        return
    page.add(
        f'<p id="failure-logs" data-failed="{logs["failed"]}" data-with-log="{logs["with_log"]}"'
        f' data-read="{logs["read"]}">{logs["with_log"]} of {logs["failed"]} failed devices'
        f" uploaded a log; {logs['read']} read. Error lines:</p>"
    )
    page.add(
        table(
            "failure-log-lines",
            ["error line", "devices", "lines"],
            [[m["message"], m["devices"], m["lines"]] for m in logs["messages"]],
        )
    )


def _steps_section(page: Page, run: RunFigures) -> None:
    page.add('<section id="steps"><h2>Per protocol step</h2>')
    header = ["type", "name", "requests", "failures", "p50", "p95", "p99", "per second"]
    page.add(table("step-figures", header, series_rows(run.http, run.duration_s)))
    rate = go.Figure(
        [go.Scatter(x=s.t, y=s.rate, name=f"{s.kind} {s.name}", mode="lines") for s in run.http]
    )
    page.chart("chart-rate", rate, "HTTP request rate per step", "requests/s")
    kinds = run.failure_kinds(mqtt=False)
    page.add("<h3>Failures by kind</h3>")
    page.add(table("failure-kinds", ["failure", "count"], list(map(list, kinds.items()))))
    page.chart(
        "chart-failures",
        go.Figure(go.Bar(x=list(kinds), y=list(kinds.values()))),
        "HTTP failures by kind",
        "failures",
        "",
    )
    percentile_chart(page, "chart-http-latency", run.http, "HTTP response time per step")
    page.add("<h3>Device-level and harness figures</h3>")
    header = ["type", "name", "count", "failures", "p50", "p95", "p99", "per second"]
    page.add(table("device-figures", header, series_rows(run.measures, run.duration_s)))
    durations = [
        s
        for s in run.measures
        if s.name.endswith(("duration", "downtime")) or s.name == "time to accepted"
    ]
    percentile_chart(page, "chart-device-durations", durations, "Device-level durations")
    page.add("</section>")


def render(run: RunFigures) -> str:
    page = Page()
    page.add(f"<h1>mendersim run report: {esc(run.record['host'])}</h1>")
    # Every chart gets the page's one template in the browser: plotly copies its default
    # template into each figure it builds, a third of the report's time at a long run's end.
    default, pio.templates.default = pio.templates.default, None
    try:
        _run_section(page, run)
        _fleet_section(page, run)
        _rollout_section(page, run)
        _steps_section(page, run)
        telemetry_section(page, run)
    finally:
        pio.templates.default = default
    config = json.dumps({"displaylogo": False, "responsive": True, "typesetMath": False})
    template = json.dumps(pio.templates[TEMPLATE], cls=PlotlyJSONEncoder)
    plots = "\n".join(
        f"(f=>{{f.layout.template=T;Plotly.newPlot({json.dumps(cid)},f.data,f.layout,{config})}})"
        f"({spec});"
        for cid, spec in page.charts
    )
    plots = f"const T={template};\n{plots}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>mendersim run report</title><style>{CSS}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        + "\n".join(page.parts)
        + f"<script>{plots}</script></body></html>\n"
    )


def write_report(run_dir: Path) -> Path:
    """Build the report (REPORT_FILE) in the run folder from the record there."""
    path = run_dir / REPORT_FILE
    path.write_text(render(load(run_dir)), encoding="utf-8")
    return path
