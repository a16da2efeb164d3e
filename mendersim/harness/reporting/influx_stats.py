"""Per-interval request statistics for the InfluxDB listener.

The listener sees every Locust request event; recording one must cost a dictionary lookup and a
few additions, because it runs on the request path of every simulated device. Response times go
into Locust's own rounding histogram, so percentiles written to InfluxDB agree with Locust's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from locust.stats import bucket_response_time, calculate_response_time_percentile

# (step, request type, profile or None): the only dimensions kept, so InfluxDB tags stay few.
StepKey = tuple[str, str, "str | None"]

PERCENTILES = {"rt_p50": 0.5, "rt_p95": 0.95, "rt_p99": 0.99}
# The whole text of a failure named by its status code alone, as the harness reports them.
STATUS_ONLY = re.compile(r"HTTP (\d{3})")


def error_kind(exception: Any, response: Any) -> str:
    """A low-cardinality name for a failure: the HTTP status when there is one (on the response,
    on the exception, or as the exception's whole text "HTTP 503"), else the exception's class.
    Never a free-form message, which may hold device ids or URLs."""
    for status in (getattr(response, "status_code", None), getattr(exception, "status_code", None)):
        if isinstance(status, int) and status >= 400:
            return f"http_{status}"
    if match := STATUS_ONLY.fullmatch(str(exception)):
        return f"http_{match.group(1)}"
    kind = getattr(exception, "stats_kind", None)  # a failure that names its own kind
    if isinstance(kind, str) and kind:
        return kind
    if isinstance(exception, str):
        return "error"
    return type(exception).__name__


class StepStats:
    """Counters of one step over one interval."""

    __slots__ = (
        "bytes",
        "count",
        "errors",
        "failures",
        "histogram",
        "max_ms",
        "min_ms",
        "timed",
        "total_ms",
    )

    def __init__(self) -> None:
        self.count = 0
        self.failures = 0
        self.timed = 0  # requests that carried a response time
        self.total_ms = 0.0
        self.min_ms = float("inf")
        self.max_ms = 0.0
        self.bytes = 0
        self.histogram: dict[int, int] = {}
        self.errors: dict[str, int] = {}

    def add(self, response_time: float | None, response_length: int | None) -> None:
        self.count += 1
        if response_length:
            self.bytes += response_length
        if response_time is None:
            return
        self.timed += 1
        self.total_ms += response_time
        if response_time < self.min_ms:
            self.min_ms = response_time
        if response_time > self.max_ms:
            self.max_ms = response_time
        bucket = bucket_response_time(response_time)
        self.histogram[bucket] = self.histogram.get(bucket, 0) + 1

    def fail(self, kind: str) -> None:
        self.failures += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def fields(self, interval_s: float) -> dict[str, float | int]:
        """The values written for this step and interval."""
        fields: dict[str, float | int] = {
            "count": self.count,
            "failures": self.failures,
            "bytes": self.bytes,
            "interval_s": interval_s,
        }
        if self.timed:
            fields["rt_mean"] = self.total_ms / self.timed
            fields["rt_min"] = float(self.min_ms)
            fields["rt_max"] = float(self.max_ms)
            for name, percent in PERCENTILES.items():
                value = calculate_response_time_percentile(self.histogram, self.timed, percent)
                # The histogram rounds; never report a percentile outside the exact extremes.
                fields[name] = float(min(max(value, self.min_ms), self.max_ms))
        return fields


@dataclass(slots=True)
class Interval:
    """What one interval recorded, handed over to the point builder."""

    seconds: float
    steps: dict[StepKey, StepStats]


class IntervalAggregator:
    """Collects request events between two flushes."""

    def __init__(self, now: float) -> None:
        self._steps: dict[StepKey, StepStats] = {}
        self._started = now

    def record(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None,
        exception: Any,
        context: dict[str, Any] | None,
        response: Any,
        **_: Any,
    ) -> None:
        key = (name, request_type, context.get("profile") if context else None)
        stats = self._steps.get(key)
        if stats is None:
            stats = self._steps[key] = StepStats()
        stats.add(response_time, response_length)
        if exception is not None:
            stats.fail(error_kind(exception, response))

    def drain(self, now: float) -> Interval:
        """Hand over everything recorded since the last drain and start a new interval.

        Runs without yielding to gevent, so no request event can fall between the two."""
        interval = Interval(seconds=max(now - self._started, 0.0), steps=self._steps)
        self._steps = {}
        self._started = now
        return interval
