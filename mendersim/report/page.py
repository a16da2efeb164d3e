"""The pieces the run report's sections are built of: tables with `id` and `data-field`
attributes, and plotly charts collected for one script at the end of the page."""

from __future__ import annotations

import html
import json
from typing import Any

import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from mendersim.report.figures import PERCENTS, Series

SINCE_START = "seconds since start"


def esc(value: Any) -> str:
    return html.escape(str(value))


def num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def table(table_id: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n" data-field="{esc(h)}">{esc(c)}</td>'
            if isinstance(c, int | float)
            else f'<td data-field="{esc(h)}">{esc(c)}</td>'
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

    def chart(
        self,
        chart_id: str,
        figure: go.Figure,
        title: str,
        y_title: str = "",
        x_title: str = SINCE_START,
    ) -> None:
        """A chart; one with nothing to draw is a line of text saying so, not an empty frame."""
        if not any(_drawn(trace) for trace in figure.data):
            self.add(f'<p class="empty" id="{chart_id}">{esc(title)}: nothing in this run.</p>')
            return
        figure.update_layout(
            title=title,
            xaxis_title=x_title,
            yaxis_title=y_title,
            margin={"l": 60, "r": 20, "t": 40, "b": 40},
        )
        self.charts.append((chart_id, json.dumps(figure, cls=PlotlyJSONEncoder)))
        self.add(f'<div class="chart" id="{chart_id}" data-chart="{esc(title)}"></div>')


def _drawn(trace: Any) -> bool:
    """Whether a trace has a point to draw (a value that is not missing)."""
    return any(v is not None for v in (trace.y if trace.y is not None else ()))


def areas(t: list[float], stacks: list[dict[str, int]]) -> go.Figure:
    keys = sorted({k for s in stacks for k in s})
    figure = go.Figure()
    for key in keys:
        figure.add_trace(
            go.Scatter(x=t, y=[s.get(key, 0) for s in stacks], name=key, stackgroup="one")
        )
    return figure


def series_rows(series: list[Series], duration: float) -> list[list[Any]]:
    return [
        [
            s.kind,
            s.name,
            s.total["count"],
            s.total["failures"],
            *(num(s.total[f"p{round(p * 100)}"]) for p in PERCENTS),
            round(s.total["count"] / duration, 3) if duration > 0 else 0,
        ]
        for s in series
    ]


def percentile_chart(page: Page, chart_id: str, series: list[Series], title: str) -> None:
    figure = go.Figure()
    for s in series:
        for p in (0.5, 0.95):
            figure.add_trace(
                go.Scatter(x=s.t, y=s.pcts[p], name=f"{s.name} p{round(p * 100)}", mode="lines")
            )
    page.chart(chart_id, figure, title, "ms")
