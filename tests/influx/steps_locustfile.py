"""A tiny locustfile for the listener and threshold tests: users fire request events under the
harness's step names, with fixed response times, a known failure pattern and a profile context,
and the master exposes a fleet whose snapshot is known in advance."""

from __future__ import annotations

import itertools
import os
from types import SimpleNamespace

from locust import User, events, task
from locust.runners import WorkerRunner

from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting import influx, stats, thresholds

influx.setup(events)
thresholds.setup(events)

# step -> (request type, response time in ms)
STEPS = {
    "auth": ("POST", 20.0),
    "inventory": ("PATCH", 30.0),
    "deployments/next": ("GET", 10.0),
    "status:downloading": ("PUT", 15.0),
}
FAILING_STEP = "inventory"
FAIL_EVERY = int(os.environ.get("STEPS_FAIL_EVERY", "20"))  # 0: nothing fails
# Each user polls this often, then idles: totals settle before the run ends, so Locust's CSV
# (rewritten every second) holds the final counts.
MAX_POLLS = int(os.environ.get("STEPS_MAX_POLLS", "30"))
DEPLOYMENT_DURATION_MS = 120_000.0
PROFILES = ("automotive", "medical")


class ServerError(Exception):
    """What a failed step raises in the harness: the answer's status names the error kind."""


class StepDevice(User):
    _serial = itertools.count()

    def wait_time(self) -> float:
        return 0.05 if self.polls < MAX_POLLS else 3600.0

    def on_start(self) -> None:
        self.profile = PROFILES[next(self._serial) % len(PROFILES)]
        self.polls = 0

    @task
    def poll(self) -> None:
        self.polls += 1
        context = {"profile": self.profile}
        fire = self.environment.events.request.fire
        for step, (request_type, response_time) in STEPS.items():
            failed = step == FAILING_STEP and FAIL_EVERY > 0 and self.polls % FAIL_EVERY == 0
            fire(
                request_type=request_type,
                name=step,
                response_time=response_time,
                response_length=100,
                response=SimpleNamespace(status_code=503 if failed else 200),
                context=context,
                exception=ServerError("503 from /inventory of device 42") if failed else None,
            )
        if self.polls % 5 == 0:
            # Device-level figures go apart from Locust's request statistics, as the harness's.
            stats.measure(
                self.environment,
                stats.DEVICE,
                stats.DEPLOYMENT_DURATION,
                DEPLOYMENT_DURATION_MS,
                profile=self.profile,
            )


class KnownFleet:
    """The master's fleet view: every user accepted, 995 of 1000 updates succeeded."""

    def __init__(self, environment) -> None:
        self.environment = environment

    def snapshot(self) -> FleetSnapshot:
        users = self.environment.runner.user_count
        return FleetSnapshot(
            users=users,
            devices_by_status={"accepted": users},
            deployments_by_state={"downloading": 3, "installing": 1},
            outcomes={"success": 995, "failure": 5},
            download_bytes=4_000_000,
            download_seconds=2.0,
            scheduler_lag_p99_s=0.05,
            scheduler_lag_max_s=0.2,
            rollout_started_at=1.0,
            rollout_finished_s=42.0,
            rollout_targets=1000,
        )


@events.init.add_listener
def attach_fleet(environment, **_kwargs) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        environment.mendersim_fleet = KnownFleet(environment)
