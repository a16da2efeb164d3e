"""The fleet's state as the master sees it: read by the web UI tab, InfluxDB and thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FleetSnapshot:
    users: int = 0
    workers: int = 0
    devices_by_status: dict[str, int] = field(default_factory=dict)  # new/pending/accepted/...
    deployments_by_state: dict[str, int] = field(default_factory=dict)  # in progress, by state
    outcomes: dict[str, int] = field(default_factory=dict)  # success/failure/... cumulative
    download_bytes: int = 0  # cumulative over finished downloads
    download_seconds: float = 0.0
    scheduler_lag_p99_s: float = 0.0  # over the last interval, worst worker
    scheduler_lag_max_s: float = 0.0
    # highest share of the simulated devices accepted by this server at once, over the run
    accepted_share_peak: float | None = None
    accepted_peak: int = 0  # most devices accepted by this server at once
    rollout_started_at: float | None = None  # unix time the rollout deployment was created
    rollout_finished_s: float | None = None  # seconds from creation until every target finished
    rollout_targets: int = 0
    rollout_done: int = 0  # targets in a final state so far (live rollout progress)

    def success_rate(self) -> float | None:
        finished = sum(self.outcomes.values())
        return None if finished == 0 else self.outcomes.get("success", 0) / finished
