"""DeviceUser runs its device under its own loop: what Locust's loop promised must still hold."""

from __future__ import annotations

import gevent
from gevent.pool import Group
from locust.env import Environment

from mendersim.harness.worker.user import DeviceUser


class FakeDevice:
    """Fails its first `failures` runs, then sleeps until stopped (or returns if `ends`)."""

    def __init__(self, failures: int = 0, ends: bool = False) -> None:
        self.failures, self.ends, self.runs = failures, ends, 0

    def run(self, admit=None) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError("engine broke")
        if not self.ends:
            gevent.sleep(60)


class FakePool:
    def __init__(self, device: FakeDevice) -> None:
        self.device, self.released = device, []

    def acquire(self) -> FakeDevice:
        return self.device

    def release(self, device: FakeDevice) -> None:
        self.released.append(device)


def start(device: FakeDevice) -> tuple[Environment, FakePool, gevent.Greenlet]:
    environment = Environment(user_classes=[DeviceUser])
    environment.mendersim_pool = FakePool(device)
    greenlet = DeviceUser(environment).start(Group())
    return environment, environment.mendersim_pool, greenlet


def test_a_killed_user_gives_its_device_back():
    device = FakeDevice()
    _, pool, greenlet = start(device)
    gevent.sleep(0.05)
    greenlet.kill(block=True, timeout=5)
    assert greenlet.dead
    assert pool.released == [device]


def test_a_device_that_ends_stops_its_user_and_goes_back():
    device = FakeDevice(ends=True)
    _, pool, greenlet = start(device)
    greenlet.join(timeout=5)
    assert greenlet.dead and greenlet.successful()
    assert pool.released == [device]


def test_an_engine_error_is_reported_and_the_device_runs_again():
    device = FakeDevice(failures=1)
    environment, pool, greenlet = start(device)
    errors = []
    environment.events.user_error.add_listener(lambda exception, **_: errors.append(exception))
    gevent.sleep(1.5)  # one second of pause after the error, then the second run
    assert [str(e) for e in errors] == ["engine broke"]
    assert device.runs == 2 and not greenlet.dead and pool.released == []
    greenlet.kill(block=True, timeout=5)
    assert pool.released == [device]
