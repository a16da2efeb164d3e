"""Device-level and harness figures, kept out of Locust's request statistics.

A `deployment duration` of 4 s or a throughput in kB/s is not a request: mixed into
`environment.stats` it would distort Locust's percentiles, requests per second and "Aggregated"
row. These figures go to a `RequestStats` of their own (the same entry type, so percentiles
round alike) and to an event hook with the signature of `events.request`, which the InfluxDB
listener and the run recorder subscribe to. Workers hand their entries to the master with each
report, as Locust does with its own statistics.
"""

from __future__ import annotations

from typing import Any

from locust.event import EventHook
from locust.stats import RequestStats, StatsEntry

ATTRIBUTE = "mendersim_measures"


class Measures:
    """This process's DEVICE and HARNESS entries (on the master: every worker's, merged)."""

    def __init__(self) -> None:
        self.stats = RequestStats()
        self.measured = EventHook()  # fired like events.request, for listeners

    def record(
        self, request_type: str, name: str, value: float, length: int = 0, profile: str = ""
    ) -> None:
        self.stats.log_request(request_type, name, value, length)
        self.measured.fire(
            request_type=request_type,
            name=name,
            response_time=value,
            response_length=length,
            exception=None,
            context={"profile": profile} if profile else {},
            response=None,
        )

    def take(self) -> list[dict[str, Any]]:
        """The entries recorded since the last call, for a worker's report (they are reset)."""
        return self.stats.serialize_stats()

    def merge(self, entries: list[dict[str, Any]]) -> None:
        """Add a worker's entries (from `take`)."""
        for data in entries:
            entry = StatsEntry.unserialize(data, self.stats)
            self.stats.entries[(entry.name, entry.method)].extend(entry)
            self.stats.total.extend(entry)


def of(environment: Any) -> Measures:
    """The environment's measures, created on first use (listeners may ask before any fire)."""
    measures = getattr(environment, ATTRIBUTE, None)
    if measures is None:
        measures = Measures()
        setattr(environment, ATTRIBUTE, measures)
    return measures
