"""Faults against a real Mosquitto beyond a restart and refused credentials (test_mqtt_session.py):
a slow consumer, and a device's outbox overflowing while it is disconnected."""

from __future__ import annotations

import time

import gevent
import paho.mqtt.client as mqtt
import pytest
from mqtt_broker import running_broker
from test_mqtt_session import Subscriber, _env, _session, _wait

pytestmark = pytest.mark.integration

MESSAGES = 200
QUEUED = 10  # the broker's max_queued_messages for this test


def test_a_slow_consumer_loses_messages_at_the_broker_not_in_the_devices_statistics(tmp_path):
    with running_broker(tmp_path, max_queued=QUEUED) as broker:
        env, seen = _env()
        topic = "mendersim/automotive/dev-slow/telemetry/#"
        fast = Subscriber(broker.port, topic, qos=1)
        slow = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        got: list[bytes] = []
        subscribed: list[bool] = []
        slow.on_message = lambda c, u, m: got.append(m.payload)
        slow.on_subscribe = lambda *_: subscribed.append(True)
        slow.connect("127.0.0.1", broker.port)
        slow.subscribe(topic, qos=1)
        deadline = time.monotonic() + 10
        while not subscribed and time.monotonic() < deadline:
            slow.loop(0.05)
        assert subscribed
        session = _session(broker, env, device="dev-slow")
        session.start()
        _wait(lambda: session.connected)
        for i in range(MESSAGES):  # the slow consumer reads nothing meanwhile
            session.publish("speed", f"{session.root}/telemetry/speed", b"%d" % i, 1)
            gevent.sleep(0.002)
        _wait(lambda: sum(e["name"] == "mqtt publish speed" for e in seen) == MESSAGES, 30)
        _wait(lambda: len(fast.messages) == MESSAGES, 30)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # now it reads what the broker kept for it
            slow.loop(0.05)
        session.stop()
        fast.close()
        slow.disconnect()
    publishes = [e for e in seen if e["name"] == "mqtt publish speed"]
    # the broker acknowledged every message: the device counts each once, as a success
    assert len(publishes) == MESSAGES and all(e["exception"] is None for e in publishes)
    assert not [e for e in seen if e["name"] == "mqtt overflow"]
    # the fast consumer got everything, in order; the slow one what fit the broker's limits
    # (20 in flight unacknowledged, QUEUED more), the rest dropped by the broker
    assert [m.payload for m in fast.messages] == [b"%d" % i for i in range(MESSAGES)]
    assert 0 < len(got) <= 20 + QUEUED
    assert got == [b"%d" % i for i in range(len(got))]


def test_outbox_overflow_while_disconnected_is_counted_and_bounded(tmp_path):
    buffer = 5
    with running_broker(tmp_path) as broker:
        env, seen = _env()
        session = _session(broker, env, device="dev-overflow", buffer=buffer)
        session.start()
        _wait(lambda: session.connected)
        broker.stop()
        _wait(lambda: not session.connected)
        for i in range(3 * buffer):
            session.publish("speed", f"{session.root}/telemetry/speed", b"%d" % i, 1)
        assert len(session._outbox) == buffer  # memory stays bounded however long it is down
        broker.start()
        sub = Subscriber(broker.port, f"{session.root}/telemetry/#", qos=1)
        _wait(lambda: len(sub.messages) >= buffer, 30)
        gevent.sleep(0.5)
        session.stop()
        sub.close()
    overflows = [e for e in seen if e["name"] == "mqtt overflow"]
    assert len(overflows) == 2 * buffer
    assert {str(e["exception"]) for e in overflows} == {"outbox full while disconnected"}
    # the newest messages were kept and delivered; published and overflowed add up
    assert [m.payload for m in sub.messages] == [b"%d" % i for i in range(2 * buffer, 3 * buffer)]
    published = [e for e in seen if e["name"] == "mqtt publish speed" and e["exception"] is None]
    assert len(published) + len(overflows) == 3 * buffer
