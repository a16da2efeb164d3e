"""A worker whose hub its one user holds for BLOCK_S, with or without the harness's heartbeat
thread (MENDERSIM_TEST_HEARTBEAT_THREAD=0 leaves only Locust's own heartbeat greenlet)."""

import os

import gevent
from gevent import monkey
from locust import User, events, task
from locust.runners import WorkerRunner

from mendersim.harness.worker import heartbeat

BLOCK_S = float(os.environ.get("MENDERSIM_TEST_BLOCK_S", "8"))
hold_hub = monkey.get_original("time", "sleep")


@events.init.add_listener
def _start(environment, **_):
    thread = os.environ.get("MENDERSIM_TEST_HEARTBEAT_THREAD", "1") == "1"
    if thread and isinstance(environment.runner, WorkerRunner):
        heartbeat.start(environment.runner)


class Blocker(User):
    @task
    def block_then_idle(self):
        hold_hub(BLOCK_S)  # a saturated hub, as many devices make it: nothing else runs
        gevent.sleep(3600)
