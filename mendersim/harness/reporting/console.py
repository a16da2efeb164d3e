"""What a headless run says on the console: a progress line while it runs, a short summary at
the end (devices accepted, deployments by outcome, rollout, per-step p95, scheduler lag, the
threshold verdict). Written to stdout, which `ci/run_demo.sh` leaves on the terminal while
Locust's own log goes to a file."""

from __future__ import annotations

import sys
import time
from typing import Any

import gevent
from locust.runners import WorkerRunner

from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting import stats as names
from mendersim.report.results import failed

PROGRESS_EVERY_S = 10.0
NOT_STEPS = (names.DEVICE, names.HARNESS)


def _say(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def progress_line(seconds: float, snapshot: FleetSnapshot) -> str:
    accepted = snapshot.devices_by_status.get("accepted", 0)
    busy = sum(snapshot.deployments_by_state.values())
    finished = sum(snapshot.outcomes.values())
    line = (
        f"mendersim: {seconds:.0f} s: {snapshot.users} devices, {accepted} accepted, "
        f"{busy} deploying, {finished} deployments finished"
    )
    if snapshot.rollout_targets:
        line += f", rollout {snapshot.rollout_done}/{snapshot.rollout_targets}"
    return line


def summary_lines(environment: Any, snapshot: FleetSnapshot | None) -> list[str]:
    lines = ["mendersim summary"]
    if snapshot is not None:
        lines.append(f"  devices accepted by the server in this run: {snapshot.accepted_peak}")
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(snapshot.outcomes.items())) or "none"
        lines.append(f"  deployments by outcome: {outcomes}")
        if snapshot.rollout_targets:
            took = (
                f"{snapshot.rollout_finished_s:.1f} s"
                if snapshot.rollout_finished_s is not None
                else "not finished"
            )
            lines.append(
                f"  rollout: {snapshot.rollout_done} of {snapshot.rollout_targets} targets, {took}"
            )
        lines.append(f"  scheduler lag max: {snapshot.scheduler_lag_max_s:.3f} s")
    steps = sorted(
        (name, entry)
        for (name, kind), entry in environment.stats.entries.items()
        if kind not in NOT_STEPS and entry.num_requests
    )
    for name, entry in steps:
        lines.append(
            f"  {entry.method} {name}: {entry.num_requests} requests, {entry.num_failures} "
            f"failed, p95 {entry.get_response_time_percentile(0.95):.0f} ms"
        )
    verdict = getattr(environment, "mendersim_verdict", None)
    if verdict is not None:
        lines.append(f"  thresholds: {'FAILED' if failed(verdict) else 'passed'}")
    return lines


def setup(events: Any) -> None:
    """Register before the thresholds: quitting listeners run last-registered first, so the
    summary comes after the verdict."""

    def on_init(environment: Any, **_: Any) -> None:
        options = environment.parsed_options
        if isinstance(environment.runner, WorkerRunner) or not getattr(options, "headless", 0):
            return
        started: list[float] = []

        def report_progress() -> None:
            while True:
                gevent.sleep(PROGRESS_EVERY_S)
                fleet = getattr(environment, "mendersim_fleet", None)
                if fleet is not None:
                    _say(progress_line(time.monotonic() - started[0], fleet.snapshot()))

        def on_test_start(**_: Any) -> None:
            if not started:
                started.append(time.monotonic())
                gevent.spawn(report_progress)

        def on_quitting(**_: Any) -> None:
            fleet = getattr(environment, "mendersim_fleet", None)
            snapshot = fleet.snapshot() if fleet is not None else None
            _say("\n".join(summary_lines(environment, snapshot)))

        environment.events.test_start.add_listener(on_test_start)
        environment.events.quitting.add_listener(on_quitting)

    events.init.add_listener(on_init)
