"""One Locust user is one Mender device: its only task is the device's life."""

from __future__ import annotations

import logging
import traceback

import gevent
from gevent import GreenletExit
from locust import User, constant, task
from locust.exception import StopTest, StopUser
from locust.user.users import LOCUST_STATE_RUNNING

from mendersim.harness.worker.pool import LeaseRefused

logger = logging.getLogger(__name__)


def lean_greenlets() -> None:
    """Greenlets stop recording who spawned them (a copy of the spawning stack and a locals dict
    each): nothing here reads it, and every sleeping device's greenlet would keep it."""
    gevent.config.track_greenlet_tree = False


class DeviceUser(User):
    """Takes a device from this process's pool on start, gives it back (with its state) on stop.

    `wait_time` never matters: the task blocks for the device's whole life, and the engine
    keeps its own timers (poll intervals, retries, install and reboot times).
    """

    wait_time = constant(0)

    def run(self) -> None:  # type: ignore[override]  # Locust's own PytestUser does the same
        """Locust's user loop without its task set: the one task runs until the device stops.

        A hundred thousand sleeping users each keep their greenlet's stack and objects; no
        DefaultTaskSet (an object and its dict per user) and four Python frames fewer at the
        sleeping point. What Locust's loop promises stays: on_start, the task again after an
        error (logged, `user_error` fired), on_stop on StopUser, StopTest or a kill."""
        self._state = LOCUST_STATE_RUNNING
        try:
            self.on_start()
            while True:
                try:
                    self.live()
                except (GreenletExit, StopUser, StopTest):
                    raise
                except Exception as exc:
                    logger.error("%s\n%s", exc, traceback.format_exc())
                    self.environment.events.user_error.fire(
                        user_instance=self, exception=exc, tb=exc.__traceback__
                    )
                    gevent.sleep(1)  # the engine failed: no busy loop while it keeps failing
        except (GreenletExit, StopUser, StopTest):
            self.on_stop()

    def on_start(self) -> None:
        self.device = None
        try:
            self.device = self.environment.mendersim_pool.acquire()
        except LeaseRefused:
            # the coordinating process reports the error once and stops the run
            raise StopUser() from None

    @task
    def live(self) -> None:
        if self.device is None:
            gevent.sleep(1)
            return
        admission = getattr(self.environment, "mendersim_admission", None)
        self.device.run(admit=None if admission is None else admission.wait)
        # run() returns once the device was stopped: the run is ending
        raise StopUser()

    def on_stop(self) -> None:
        if self.device is not None:
            self.environment.mendersim_pool.release(self.device)
            self.device = None
