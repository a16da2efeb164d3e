"""The outcome of checking one rule, in the words every report shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's verdict; `measured` is None when the run produced nothing to measure."""

    rule: str  # e.g. "steps.auth.p95_ms"
    limit: str  # e.g. "<= 500 ms"
    measured: str  # e.g. "212 ms", or "no data"
    passed: bool

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        return "FAIL (no data)" if self.measured == NO_DATA else "FAIL"

    @property
    def message(self) -> str:
        return f"{self.rule}: measured {self.measured}, limit {self.limit}"


NO_DATA = "no data"
HEADER = ("Rule", "Limit", "Measured", "Verdict")


def rows(results: Sequence[RuleResult]) -> list[tuple[str, str, str, str]]:
    return [(r.rule, r.limit, r.measured, r.verdict) for r in results]


def failed(results: Sequence[RuleResult]) -> list[RuleResult]:
    return [r for r in results if not r.passed]


def text_table(results: Sequence[RuleResult]) -> str:
    """A fixed-width table for the console, ending with the overall verdict."""
    table = [HEADER, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(overall(results))
    return "\n".join(lines)


def overall(results: Sequence[RuleResult]) -> str:
    bad = len(failed(results))
    if bad:
        return f"Thresholds FAILED: {bad} of {len(results)} rules failed"
    return f"Thresholds passed: all {len(results)} rules"
