"""The run report: one self-contained HTML file with plotly.js inline, so it opens offline.

plotly (the Python package) ships plotly.js; the page embeds that copy once and each chart as
JSON, and loads nothing from the network (fonts are the system's, MathJax and the mode bar's
logo link are off). Sections and figures carry `id`/`data-*` attributes so tests and scripts can
read them back.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

from mendersim.report.figures import PERCENTS, ROLLOUT_MARKS, RunFigures, Series, load

REPORT_FILE = "mendersim-report.html"  # beside Locust's own report.html
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:72em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .6em}
th{background:#f4f4f4;text-align:left}td.n{text-align:right}.pass{color:#070}.fail{color:#b00}
.chart{height:320px}@media print{.chart{break-inside:avoid}h2{break-before:auto}}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _table(table_id: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n" data-field="{_e(h)}">{_e(c)}</td>'
            if isinstance(c, int | float)
            else f'<td data-field="{_e(h)}">{_e(c)}</td>'
            for h, c in zip(header, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


class Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.charts: list[tuple[str, str]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, chart_id: str, figure: go.Figure, title: str, y_title: str = "") -> None:
        figure.update_layout(
            title=title,
            xaxis_title="seconds since start",
            yaxis_title=y_title,
            margin={"l": 60, "r": 20, "t": 40, "b": 40},
            template="plotly_white",
        )
        self.charts.append((chart_id, json.dumps(figure, cls=PlotlyJSONEncoder)))
        self.add(f'<div class="chart" id="{chart_id}" data-chart="{_e(title)}"></div>')


def _areas(t: list[float], stacks: list[dict[str, int]]) -> go.Figure:
    keys = sorted({k for s in stacks for k in s})
    figure = go.Figure()
    for key in keys:
        figure.add_trace(
            go.Scatter(x=t, y=[s.get(key, 0) for s in stacks], name=key, stackgroup="one")
        )
    return figure


def _run_section(page: Page, run: RunFigures) -> None:
    record = run.record
    started = dt.datetime.fromtimestamp(record["started"], dt.timezone.utc)
    page.add('<section id="run"><h2>The run</h2>')
    page.add(
        _table(
            "run-facts",
            ["figure", "value"],
            [
                ["target server", record["host"]],
                ["started (UTC)", started.strftime("%Y-%m-%d %H:%M:%S")],
                ["duration (s)", round(run.duration_s, 1)],
                ["devices in the fleet", record["fleet_size"]],
                ["users at the end", record["fleet"]["users"]],
                ["workers", record["fleet"]["workers"]],
                ["mendersim", record["versions"]["mendersim"]],
                ["locust", record["versions"]["locust"]],
            ],
        )
    )
    store = record["store"]
    page.add("<h3>Fleet</h3>")
    page.add(
        _table(
            "fleet-makeup",
            ["profile / key type", "devices"],
            [[k, n] for k, n in store["by_profile_key"].items()],
        )
    )
    page.add("<h3>Options</h3>")
    page.add(_table("options", ["option", "value"], [[k, v] for k, v in record["options"].items()]))
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
            _table(
                "thresholds",
                ["rule", "limit", "measured", "verdict"],
                [[v["rule"], v["limit"], v["measured"], v["verdict"]] for v in verdicts],
            )
        )
    page.add("</section>")


def _fleet_section(page: Page, run: RunFigures) -> None:
    page.add('<section id="fleet"><h2>The fleet over time</h2>')
    page.add(
        _table(
            "fleet-final",
            ["status at the end (store)", "devices"],
            [[k, n] for k, n in sorted(run.record["store"]["by_status"].items())],
        )
    )
    page.chart(
        "chart-devices",
        _areas(run.t, [f["devices_by_status"] for f in run.fleet]),
        "Devices by status",
        "devices",
    )
    page.chart(
        "chart-deployments",
        _areas(run.t, [f["deployments_by_state"] for f in run.fleet]),
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
            _table(
                "rollout-marks",
                ["targets finished", "seconds after the deployment was created"],
                [[f"{round(m * 100)} %", _num(marks[m])] for m in ROLLOUT_MARKS],
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
    page.add(_table("outcomes", ["outcome", "deployments"], sorted(map(list, outcomes.items()))))
    if outcomes:
        bars = go.Figure(go.Bar(x=list(outcomes), y=list(outcomes.values())))
        page.chart("chart-outcomes", bars, "Deployment outcomes", "deployments")
    page.add("<h3>Failure reasons</h3>")
    failed = [d for d in run.record["store"]["deployments"] if d["result"] == "failure"]
    page.add(
        _table(
            "failure-reasons",
            ["reason", "deployments"],
            [[d["reason"] or "(none given)", d["count"]] for d in failed],
        )
    )
    throughput = run.measure("download throughput (kB/s)")
    if throughput is not None:
        hist = {int(k): v for k, v in throughput.total["rt"].items()}
        keys = sorted(hist)
        bars = go.Figure(go.Bar(x=keys, y=[hist[k] for k in keys], name="downloads"))
        bars.update_layout(xaxis_title="kB/s")
        page.chart("chart-throughput", bars, "Download throughput per device", "downloads")
    page.add("</section>")


def _series_rows(series: list[Series], duration: float) -> list[list[Any]]:
    return [
        [
            s.kind,
            s.name,
            s.total["count"],
            s.total["failures"],
            *(_num(s.total[f"p{round(p * 100)}"]) for p in PERCENTS),
            round(s.total["count"] / duration, 3) if duration > 0 else 0,
        ]
        for s in series
    ]


def _percentile_chart(page: Page, chart_id: str, series: list[Series], title: str) -> None:
    figure = go.Figure()
    for s in series:
        for p in (0.5, 0.95):
            figure.add_trace(
                go.Scatter(x=s.t, y=s.pcts[p], name=f"{s.name} p{round(p * 100)}", mode="lines")
            )
    page.chart(chart_id, figure, title, "ms")


def _steps_section(page: Page, run: RunFigures) -> None:
    page.add('<section id="steps"><h2>Per protocol step</h2>')
    header = ["type", "name", "requests", "failures", "p50", "p95", "p99", "per second"]
    page.add(_table("step-figures", header, _series_rows(run.steps, run.duration_s)))
    rate = go.Figure(
        [go.Scatter(x=s.t, y=s.rate, name=f"{s.kind} {s.name}", mode="lines") for s in run.steps]
    )
    page.chart("chart-rate", rate, "HTTP request rate per step", "requests/s")
    kinds: dict[str, int] = {}
    for error in run.errors:
        kinds[error["error"]] = kinds.get(error["error"], 0) + error["count"]
    page.add("<h3>Failures by kind</h3>")
    page.add(_table("failure-kinds", ["failure", "count"], sorted(map(list, kinds.items()))))
    if kinds:
        page.chart(
            "chart-failures",
            go.Figure(go.Bar(x=list(kinds), y=list(kinds.values()))),
            "HTTP failures by kind",
            "failures",
        )
    _percentile_chart(page, "chart-http-latency", run.steps, "HTTP response time per step")
    page.add("<h3>Device-level and harness figures</h3>")
    header = ["type", "name", "count", "failures", "p50", "p95", "p99", "per second"]
    page.add(_table("device-figures", header, _series_rows(run.measures, run.duration_s)))
    durations = [
        s
        for s in run.measures
        if s.name.endswith(("duration", "downtime")) or s.name == "time to accepted"
    ]
    _percentile_chart(page, "chart-device-durations", durations, "Device-level durations")
    page.add("</section>")


def render(run: RunFigures) -> str:
    page = Page()
    page.add(f"<h1>mendersim run report: {_e(run.record['host'])}</h1>")
    _run_section(page, run)
    _fleet_section(page, run)
    _rollout_section(page, run)
    _steps_section(page, run)
    config = json.dumps({"displaylogo": False, "responsive": True, "typesetMath": False})
    plots = "\n".join(
        f"(f=>Plotly.newPlot({json.dumps(cid)},f.data,f.layout,{config}))({spec});"
        for cid, spec in page.charts
    )
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
