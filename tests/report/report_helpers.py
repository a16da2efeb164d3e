"""Helpers of the report tests: the report's tables and charts read back, as a parser and as a
browser sees them, and Locust's CSVs."""

from __future__ import annotations

import base64
import csv
import re
import time
from html.parser import HTMLParser
from pathlib import Path

from browser import chromium_page, open_file


class Tables(HTMLParser):
    """Every table by id: rows of cell texts; and the chart divs by id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.charts: list[str] = []
        self.sections: list[str] = []
        self.external: list[str] = []
        self.data: dict[str, dict[str, str]] = {}  # data-* attributes by element id
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.data[a["id"]] = {k[5:]: v for k, v in a.items() if k.startswith("data-")}
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])
        if tag == "table":
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "div" and "data-chart" in a:
            self.charts.append(a["id"])
        elif tag == "section":
            self.sections.append(a["id"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Tables:
    tables = Tables()
    tables.feed(path.read_text(encoding="utf-8"))
    return tables


def rows_by(table: list[list[str]], *key: int) -> dict[tuple[str, ...], list[str]]:
    return {tuple(row[i] for i in key): row for row in table[1:]}


def csv_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(handle)}


# Per chart div: plotly's SVG layers, its drawn size, and the trace marks with a non-empty shape.
CHART_STATE = """[...document.querySelectorAll('div[data-chart]')].map(div => ({
  id: div.id,
  svgs: div.querySelectorAll('svg.main-svg').length,
  width: div.getBoundingClientRect().width,
  height: div.getBoundingClientRect().height,
  marks: [...div.querySelectorAll('g.trace path')]
    .filter(p => (p.getAttribute('d') || '').replace(/[MZ\\s]/g, '').length > 0).length,
}))"""


def browse(report: Path) -> tuple[list[dict], object, bytes]:
    """Open the report in headless Chromium; the charts as drawn, what the visit did, and the
    page printed to PDF as a reader's "Print" gives it."""
    expected = len(parse(report).charts)
    with chromium_page() as page:
        open_file(page, report)
        deadline = time.monotonic() + 30
        while True:  # plotly draws right after the load event; give a loaded machine time
            charts = page.evaluate(CHART_STATE)
            if all(c["svgs"] for c in charts) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(charts) == expected
        printed = base64.b64decode(page.call("Page.printToPDF", timeout_s=60)["data"])
        return charts, page.visit, printed


def assert_draws(report: Path) -> None:
    """Every chart is drawn with marks, the page logged no error and fetched only itself."""
    charts, visit, printed = browse(report)
    assert charts
    for chart in charts:
        assert chart["svgs"] >= 1 and chart["width"] > 100 and chart["height"] > 100, chart
        assert chart["marks"] > 0, chart
    assert visit.errors == []
    assert visit.requests == [report.resolve().as_uri()]
    assert visit.failed_requests == []
    # Printable: a PDF of several pages (the sections break onto pages of their own).
    assert printed.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page[^s]", printed)) >= 2
