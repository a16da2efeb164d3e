"""The network profile applied to MQTT sessions against a real Mosquitto: an outage cuts the
connection (within a second), what is published meanwhile waits, and connects fail with backoff
until it ends; loss that times the link out shows as failures, and the statistics match what a
subscriber receives."""

from __future__ import annotations

import time

import gevent
import pytest
from test_mqtt_session import Subscriber, _env, _wait

from mendersim.device import decide
from mendersim.device.network import NetworkProfile, Outage
from mendersim.device.shaping import ShapedTransport
from mendersim.telemetry.gevent_loop import GeventMqttLoop
from mendersim.telemetry.session import Session
from mendersim.telemetry.settings import MqttSettings

pytestmark = pytest.mark.integration

EVERY_S = 1000.0


class SetClock:
    """The link's clock, set by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def link(device: str, clock: SetClock, **figures) -> ShapedTransport:
    profile = NetworkProfile(name="test", **figures)
    return ShapedTransport(None, profile, clock, device_id=device, seed=3)


def refused_connects(seen: list[dict]) -> list[dict]:
    return [e for e in seen if e["name"] == "mqtt connect" and e["exception"] is not None]


def session(broker, env, device: str, shaped: ShapedTransport) -> Session:
    return Session(
        env,
        GeventMqttLoop(),
        MqttSettings(host="127.0.0.1", port=broker.port),
        device,
        "industrial",
        seed=3,
        offline=shaped.offline,
        stalls=shaped.stalls,
    )


def test_an_outage_cuts_the_session_and_reconnects_back_off_until_it_ends(broker):
    env, seen = _env()
    clock = SetClock()
    device = "dev-outage"
    shaped = link(device, clock, outage=Outage(EVERY_S, 100.0))
    phase = decide.fraction(3, device, "outage") * EVERY_S
    clock.t = EVERY_S / 2 - phase  # between outages
    assert not shaped.offline()
    sub = Subscriber(broker.port, f"mendersim/industrial/{device}/telemetry/#")
    dev = session(broker, env, device, shaped)
    dev.start()
    _wait(lambda: dev.connected)
    clock.t = EVERY_S - phase + 1.0  # the outage begins
    assert shaped.offline()
    topic = f"{dev.root}/telemetry/current"
    dev.publish("current", topic, b"kept-q0", 0)  # before the session notices the outage
    for i in range(3):
        dev.publish("current", topic, f"kept-{i}".encode(), 1)
    _wait(lambda: not dev.connected)
    cut_at = time.monotonic()
    _wait(lambda: len(refused_connects(seen)) >= 3, 20)
    clock.t += 200.0  # the outage is over
    _wait(lambda: dev.connected, 90)
    _wait(lambda: len(sub.messages) >= 4)
    _wait(lambda: sum(e["name"] == "mqtt publish current" for e in seen) == 4)  # acks back
    dev.stop()
    sub.close()
    assert sorted(m.payload for m in sub.messages) == [b"kept-0", b"kept-1", b"kept-2", b"kept-q0"]
    published = [e for e in seen if e["name"] == "mqtt publish current"]
    assert len(published) == 4 and not [e for e in published if e["exception"]]
    drops = [e for e in seen if e["name"] == "mqtt disconnect"]
    assert [str(e["exception"]) for e in drops] == ["offline"]
    refused = refused_connects(seen)
    assert refused and {str(e["exception"]) for e in refused} == {"offline"}
    # backoff: 1 s, then 2 s, then 4 s (times 0.5 to 1.5 of jitter), not one attempt a second
    assert time.monotonic() - cut_at >= 3.0
    ok = [e for e in seen if e["name"] == "mqtt connect" and e["exception"] is None]
    assert len(ok) == 2


def test_loss_that_times_the_link_out_counts_failures_that_match_what_arrives(broker):
    env, seen = _env()
    clock = SetClock()
    device = "dev-lossy"
    shaped = link(device, clock, loss=0.5)  # one exchange in 8 meets three losses in a row
    sub = Subscriber(broker.port, f"mendersim/industrial/{device}/telemetry/#")
    dev = session(broker, env, device, shaped)
    dev.start()
    sent = 0
    deadline = time.monotonic() + 60
    while sent < 40 and time.monotonic() < deadline:
        if dev.connected:
            dev.publish("current", f"{dev.root}/telemetry/current", str(sent).encode(), 0)
            sent += 1
        gevent.sleep(0.05)
    assert sent == 40
    gevent.sleep(1.0)
    dev.stop()
    sub.close()
    published = [e for e in seen if e["name"] == "mqtt publish current"]
    failed = [e for e in published if e["exception"]]
    assert failed and {str(e["exception"]) for e in failed} == {"timeout"}
    assert len(published) == sent
    # every message counted as published arrived; every failed one did not
    assert len(sub.messages) == sent - len(failed)
    timeouts = [e for e in seen if e["name"] == "mqtt disconnect" and e["exception"]]
    assert timeouts and {str(e["exception"]) for e in timeouts} == {"timeout"}
