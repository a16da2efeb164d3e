"""The fleet as the master sees it, from every process's periodic report.

Each simulating process (worker or standalone) reports device counts, outcomes, download figures
and its scheduler-lag histogram; the master merges them into a `FleetSnapshot` for the web UI,
InfluxDB and thresholds (`environment.mendersim_fleet.snapshot()`), and warns when a worker's
timers fire later than the bound: its numbers then describe the generator, not the server.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting import stats
from mendersim.harness.worker.clock import BUCKETS, percentile_s

if TYPE_CHECKING:
    from mendersim.harness.worker.pool import DevicePool

logger = logging.getLogger(__name__)


def process_report(pool: DevicePool, environment: Any) -> dict[str, Any]:
    """This process's figures since the last report; fires its lag p99 as a HARNESS entry."""
    by_status, by_phase = pool.counts()
    counts, worst = pool.lag.take()
    samples = sum(counts)
    if samples:
        stats.measure(
            environment, stats.HARNESS, stats.SCHEDULER_LAG_P99, percentile_s(counts, 0.99) * 1000
        )
    return {
        "status": dict(by_status),
        "phases": dict(by_phase),
        "outcomes": dict(pool.counters.outcomes),
        "dl_bytes": pool.counters.download_bytes,
        "dl_s": pool.counters.download_seconds,
        "lag": {i: n for i, n in enumerate(counts) if n},
        "lag_max": worst,
    }


class FleetView:
    def __init__(
        self,
        lag_bound_s: float,
        *,
        users: Callable[[], int],
        workers: Callable[[], list[str]],
    ) -> None:
        self.lag_bound = lag_bound_s
        self._users = users
        self._workers = workers
        self._reports: dict[str, dict[str, Any]] = {}
        self._lag: dict[str, tuple[float, float]] = {}  # client → (p99, max) of its last report
        self._warned = False  # the console hears of saturation once per swarm
        # From the stop on, the lag measured is the hand-in's own (its walks over the fleet do
        # not yield, by design) and no device runs: it says nothing of the load.
        self._stopping = False
        self.rollout = FleetSnapshot()  # only the rollout_* fields are used
        self.lag_warning: str | None = None
        self.accept_warning: str | None = None  # set by the acceptance watch
        self._accepted_share_peak: float | None = None
        self._accepted_peak = 0

    def update(self, client: str, report: dict[str, Any]) -> None:
        self._reports[client] = report
        counts = [0] * BUCKETS
        for index, count in report.get("lag", {}).items():
            counts[int(index)] = count
        if sum(counts) == 0 or self._stopping:
            return
        p99 = percentile_s(counts, 0.99)
        self._lag[client] = (p99, float(report.get("lag_max", 0.0)))
        if p99 > self.lag_bound:
            self.lag_warning = (
                f"scheduler lag p99 {p99:.2f} s on {client} exceeds {self.lag_bound:g} s: "
                "the load generator is saturated, its latencies are not the server's"
            )
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%s (said once; the Fleet tab shows the current figure)", self.lag_warning
                )
        else:
            self.lag_warning = None

    def new_swarm(self, lag_bound_s: float) -> None:
        """A swarm starts: its bound, and its own saturation warning."""
        self.lag_bound, self._warned, self._stopping = lag_bound_s, False, False

    def stopping(self) -> None:
        """The swarm stops: later reports count the fleet, and their lag is left out."""
        self._stopping = True

    def snapshot(self) -> FleetSnapshot:
        live = set(self._workers())
        by_status: Counter[str] = Counter()
        by_phase: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        dl_bytes, dl_s = 0, 0.0
        for client, report in self._reports.items():
            outcomes.update(report["outcomes"])
            dl_bytes += report["dl_bytes"]
            dl_s += report["dl_s"]
            if client in live:
                by_status.update(report["status"])
                by_phase.update(report["phases"])
        lags = [lag for client, lag in self._lag.items() if client in live]
        simulated = sum(by_status.values())
        if simulated:
            share = by_status.get("accepted", 0) / simulated
            self._accepted_share_peak = max(share, self._accepted_share_peak or 0.0)
            self._accepted_peak = max(self._accepted_peak, by_status.get("accepted", 0))
        return replace(
            self.rollout,
            users=self._users(),
            workers=len(live),
            devices_by_status=dict(by_status),
            deployments_by_state=dict(by_phase),
            outcomes=dict(outcomes),
            download_bytes=dl_bytes,
            download_seconds=dl_s,
            scheduler_lag_p99_s=max((p for p, _ in lags), default=0.0),
            scheduler_lag_max_s=max((m for _, m in lags), default=0.0),
            accepted_share_peak=self._accepted_share_peak,
            accepted_peak=self._accepted_peak,
        )
