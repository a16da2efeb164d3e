"""A Markdown summary of the threshold verdicts, fit for a CI job summary."""

from __future__ import annotations

import os
from collections.abc import Sequence

from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.report.results import HEADER, RuleResult, overall, rows

MARKS = {True: "✅", False: "❌"}


def markdown_summary(results: Sequence[RuleResult], run: str = "", about: str = "") -> str:
    """`about`: one line of run metadata (environment, version under test) under the title."""
    title = "## mendersim thresholds" + (f": {run}" if run else "")
    lines = [title, "", *([about, ""] if about else []), f"**{overall(results)}**", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    for result, row in zip(results, rows(results), strict=True):
        cells = [_escape(cell) for cell in row]
        cells[-1] = f"{MARKS[result.passed]} {cells[-1]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def key_figures(snapshot: FleetSnapshot | None) -> str:
    """The run report's headline figures, for the job summary and the console."""
    if snapshot is None:
        return ""
    # the peak: while devices stop at the end, the live count falls before the snapshot is read
    accepted = max(snapshot.accepted_peak, snapshot.devices_by_status.get("accepted", 0))
    parts = [f"{accepted} devices accepted"]
    rate = snapshot.success_rate()
    if rate is not None:
        parts.append(f"deployment success {rate:.1%} of {sum(snapshot.outcomes.values())}")
    if snapshot.rollout_finished_s is not None:
        parts.append(f"rollout finished in {snapshot.rollout_finished_s:.1f} s")
    return ", ".join(parts)


def report_line(path: str, snapshot: FleetSnapshot | None) -> str:
    figures = key_figures(snapshot)
    return f"Run report: `{path}`" + (f" ({figures})" if figures else "") + "\n"


def save_summary(text: str, path: str, append: bool) -> None:
    """Write the summary; append to a shared file such as GitHub's $GITHUB_STEP_SUMMARY, where
    earlier steps' summaries must stay."""
    if directory := os.path.dirname(path):
        os.makedirs(directory, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as summary:
        summary.write(text + "\n")


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")
