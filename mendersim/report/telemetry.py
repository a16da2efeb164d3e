"""The report's MQTT section: telemetry streams, publish rates, command round trips, links, and
the ground truth of the injected anomalies. Only a run with MQTT figures or a truth file has it.
"""

from __future__ import annotations

import plotly.graph_objects as go

from mendersim.report.figures import RunFigures
from mendersim.report.page import Page, percentile_chart, series_rows, table

PUBLISH = "mqtt publish "
PUBLISH_ACK = "mqtt publish ack"
COMMANDS = ("mqtt command", "mqtt command delivery")


def telemetry_section(page: Page, run: RunFigures) -> None:
    mqtt = run.mqtt
    anomalies = run.record.get("anomalies")
    if not mqtt and not anomalies:
        return
    page.add('<section id="mqtt"><h2>MQTT telemetry and commands</h2>')
    header = ["type", "name", "messages", "failures", "p50", "p95", "p99", "per second"]
    page.add(table("mqtt-figures", header, series_rows(mqtt, run.duration_s)))
    streams = [s for s in mqtt if s.name.startswith(PUBLISH) and s.name != PUBLISH_ACK]
    rates = go.Figure(
        [go.Scatter(x=s.t, y=s.rate, name=s.name[len(PUBLISH) :], mode="lines") for s in streams]
    )
    page.chart("chart-mqtt-publish", rates, "Telemetry published per stream", "messages/s")
    commands = [s for s in mqtt if s.name in COMMANDS]
    percentile_chart(page, "chart-mqtt-commands", commands, "Command delivery and round trip")
    kinds = run.failure_kinds(mqtt=True)
    page.add("<h3>MQTT failures by kind</h3>")
    page.add(table("mqtt-failure-kinds", ["failure", "count"], list(map(list, kinds.items()))))
    _anomalies(page, anomalies)
    page.add("</section>")


def _anomalies(page: Page, anomalies: dict | None) -> None:
    page.add("<h3>Injected anomalies (ground truth)</h3>")
    if not anomalies:
        page.add('<p id="anomalies">No ground-truth file was found for this run.</p>')
        return
    files = ", ".join(anomalies["files"]) or "none found"
    page.add(
        f'<p id="anomalies" data-total="{anomalies["total"]}">{anomalies["total"]} anomalies'
        f" recorded (from {files}).</p>"
    )
    by_type = anomalies["by_type"]
    page.add(table("anomaly-types", ["type", "anomalies"], list(map(list, by_type.items()))))
    bars = go.Figure(go.Bar(x=list(by_type), y=list(by_type.values())))
    page.chart("chart-anomalies", bars, "Injected anomalies by type", "anomalies", "")
    page.add(
        table(
            "anomaly-streams",
            ["profile / stream", "anomalies"],
            list(map(list, anomalies["by_stream"].items())),
        )
    )
