"""One Locust user is one Mender device: its only task is the device's life."""

from __future__ import annotations

import gevent
from locust import User, constant, task
from locust.exception import StopUser

from mendersim.harness.pool import LeaseRefused


class DeviceUser(User):
    """Takes a device from this process's pool on start, gives it back (with its state) on stop.

    `wait_time` never matters: the task blocks for the device's whole life, and the engine
    keeps its own timers (poll intervals, retries, install and reboot times).
    """

    wait_time = constant(0)

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
        self.device.run()
        # run() returns once the device was stopped: the run is ending
        raise StopUser()

    def on_stop(self) -> None:
        if self.device is not None:
            self.environment.mendersim_pool.release(self.device)
            self.device = None
