"""The run report's figures, computed from the run folder alone (as the harness's recorder
wrote it).

Everything is derived from cumulative samples, so the report rebuilt later from the same folder
shows the same numbers. Percentiles come from Locust's rounded histograms, as in Locust's CSVs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust.stats import calculate_response_time_percentile

from mendersim.errors import MendersimError

NOT_REQUESTS = ("DEVICE", "HARNESS")
MQTT = "MQTT"  # Locust request type of the MQTT sessions' figures (telemetry/session.py)
PERCENTS = (0.5, 0.95, 0.99)
ROLLOUT_MARKS = (0.5, 0.9, 1.0)


def percentile(histogram: dict[str, int], percent: float) -> float | None:
    count = sum(histogram.values())
    if not count:
        return None
    buckets = {int(k): v for k, v in histogram.items()}
    return float(calculate_response_time_percentile(buckets, count, percent))


def _minus(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: d for k, v in now.items() if (d := v - before.get(k, 0)) > 0}


@dataclass
class Series:
    """One statistics entry over time: per-interval rate and percentiles, and its totals."""

    kind: str
    name: str
    t: list[float] = field(default_factory=list)  # seconds since the run started
    rate: list[float] = field(default_factory=list)  # per second over the interval
    failures: list[int] = field(default_factory=list)
    pcts: dict[float, list[float | None]] = field(default_factory=dict)
    total: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunFigures:
    record: dict[str, Any]
    t: list[float]
    fleet: list[dict[str, Any]]
    steps: list[Series]  # HTTP exchanges
    measures: list[Series]  # DEVICE and HARNESS figures
    errors: list[dict[str, Any]]

    @property
    def duration_s(self) -> float:
        return self.record["finished"] - self.record["started"]

    def accepted_share(self) -> list[float]:
        size = self.record.get("fleet_size") or 1
        return [f["devices_by_status"].get("accepted", 0) / size for f in self.fleet]

    def rollout_marks(self) -> dict[float, float | None]:
        """Seconds from the rollout's creation until 50 / 90 / 100 % of targets finished."""
        final = self.record["fleet"]
        start, targets = final.get("rollout_started_at"), final.get("rollout_targets") or 0
        marks: dict[float, float | None] = dict.fromkeys(ROLLOUT_MARKS)
        if start is None or not targets:
            return marks
        for t, f in zip(self.t, self.fleet, strict=True):
            done = f.get("rollout_done", 0) / targets
            for mark in ROLLOUT_MARKS:
                if marks[mark] is None and done >= mark:
                    marks[mark] = max(t + self.record["started"] - start, 0.0)
        finished = final.get("rollout_finished_s")
        if finished is not None:  # exact; the samples, 2 s apart, only bound the marks above
            marks = {m: finished if v is None else min(v, finished) for m, v in marks.items()}
            marks[1.0] = finished
        return marks

    @property
    def http(self) -> list[Series]:
        return [s for s in self.steps if s.kind != MQTT]

    @property
    def mqtt(self) -> list[Series]:
        return [s for s in self.steps if s.kind == MQTT]

    def failure_kinds(self, mqtt: bool) -> dict[str, int]:
        """Failures by their text, over the MQTT figures or over the HTTP steps."""
        kinds: dict[str, int] = {}
        for error in self.errors:
            if (error["type"] == MQTT) == mqtt:
                kinds[error["error"]] = kinds.get(error["error"], 0) + error["count"]
        return dict(sorted(kinds.items()))

    def measure(self, name: str) -> Series | None:
        return next((s for s in self.measures if s.name == name), None)


def _series(samples: list[dict[str, Any]], key: str, t: list[float]) -> list[Series]:
    by_key: dict[tuple[str, str], Series] = {}
    previous: dict[tuple[str, str], dict[str, Any]] = {}
    last_t = 0.0
    for at, sample in zip(t, samples, strict=True):
        seen = {(e["type"], e["name"]): e for e in sample[key]}
        for entry_key, entry in seen.items():
            series = by_key.setdefault(entry_key, Series(*entry_key))
            before = previous.get(entry_key, {"count": 0, "failures": 0, "rt": {}})
            span = max(at - last_t, 1e-9)
            series.t.append(at)
            series.rate.append((entry["count"] - before["count"]) / span)
            series.failures.append(entry["failures"] - before["failures"])
            window = _minus(entry["rt"], before["rt"])
            for p in PERCENTS:
                series.pcts.setdefault(p, []).append(percentile(window, p))
            previous[entry_key] = entry
        last_t = at
    for entry_key, series in by_key.items():
        entry = previous[entry_key]
        count = entry["count"]
        series.total = {
            "count": count,
            "failures": entry["failures"],
            "bytes": entry["bytes"],
            "rt": entry["rt"],
            **{f"p{round(p * 100)}": percentile(entry["rt"], p) for p in PERCENTS},
            "mean": (sum(int(k) * v for k, v in entry["rt"].items()) / count if count else None),
        }
    return sorted(by_key.values(), key=lambda s: (s.name, s.kind))


def load(run_dir: Path) -> RunFigures:
    """Read a run folder; a missing or broken record is one MendersimError naming the file."""
    run_path, timeline_path = run_dir / "run.json", run_dir / "timeline.jsonl"
    try:
        record = json.loads(run_path.read_text(encoding="utf-8"))
        lines = timeline_path.read_text(encoding="utf-8").splitlines()
        samples = [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError as exc:
        raise MendersimError(f"{exc.filename}: no run record here (not a run folder?)") from None
    except (OSError, ValueError) as exc:
        raise MendersimError(f"{run_dir}: run record unreadable: {exc}") from None
    if not samples:
        raise MendersimError(f"{timeline_path}: no samples")
    t = [s["t"] - record["started"] for s in samples]
    return RunFigures(
        record=record,
        t=t,
        fleet=[s["fleet"] for s in samples],
        steps=_series(samples, "steps", t),
        measures=_series(samples, "measures", t),
        errors=samples[-1]["errors"],
    )
