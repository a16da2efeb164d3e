"""A reboot ordered from outside the device's loop (an MQTT `reboot` command): the device makes no
request while it is down, then authenticates, sends inventory and polls, as after a boot."""

from __future__ import annotations

import gevent
from device_fakes import FakeMender, Recorder, make_record, profile

from mendersim.device.behaviour import Behaviour
from mendersim.device.engine import Device, EngineConfig
from mendersim.harness.worker.clock import GeventClock, LagHistogram

SCALE = 0.001  # a 60 s poll interval takes 60 ms, a 600 s reboot 0.6 s


def test_no_request_while_a_commanded_reboot_is_down_then_a_boot_poll():
    clock = GeventClock(LagHistogram())
    server = FakeMender(clock)  # exchanges are stamped with the real monotonic time
    listener = Recorder()
    device = Device(
        make_record(),
        Behaviour.from_profile(
            profile(
                intervals={"update_poll": 60, "inventory_poll": 28800, "retry_poll": 60},
                durations={"install": {"min": 1, "max": 1}, "reboot": {"min": 600, "max": 600}},
            )
        ),
        server,
        clock,
        config=EngineConfig(time_scale=SCALE, start_spread=0),
        listener=listener,
    )
    running = gevent.spawn(device.run)
    gevent.sleep(0.3)  # a few polls
    assert len(server.of("deployments/next")) >= 3
    while device.phase != "idle":  # the command handler waits for the exchange in flight
        gevent.sleep(0.001)
    began = clock.now()
    rebooting = gevent.spawn(device.reboot, 600)
    rebooting.join(timeout=5)
    ended = clock.now()
    gevent.sleep(0.2)
    device.stop()
    running.join(timeout=5)
    assert ended - began >= 0.6
    during = [e.step for e in server.exchanges if began <= e.at < began + 0.6]
    assert during == []
    after = [e.step for e in server.exchanges if e.at >= began + 0.6]
    # the token went with the reboot: authentication first, then what a boot sends
    assert after[0] == "auth"
    assert {"inventory", "deployments/next"} <= set(after[1:3])
    assert listener.named("downtime") == [("reboot", 600 * SCALE)]
