"""Device MQTT sessions against a real Mosquitto: delivery per QoS, birth, will, persistence."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import gevent
import paho.mqtt.client as mqtt
import pytest
from locust.event import Events
from mqtt_broker import Subscriber, running_broker

from mendersim.telemetry.gevent_loop import NATIVE_LOCK, NATIVE_RLOCK, PAHO_LOCKS, GeventMqttLoop
from mendersim.telemetry.session import Session
from mendersim.telemetry.settings import MqttSettings

pytestmark = pytest.mark.integration


def _env():
    events = Events()
    seen: list[dict] = []
    events.request.add_listener(lambda **kw: seen.append(kw))
    return SimpleNamespace(events=events), seen


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.02)


def _session(broker, env, device="dev-1", **settings) -> Session:
    merged = {"host": "127.0.0.1", "port": broker.port, **settings}
    return Session(
        env,
        GeventMqttLoop(),
        MqttSettings(**merged),
        device,
        "automotive",
        birth={"device_type": "tcu"},
    )


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publishes_arrive_with_their_qos_and_stats_are_per_step(broker, qos):
    env, seen = _env()
    sub = Subscriber(broker.port, "mendersim/automotive/+/telemetry/#")
    session = _session(broker, env, device=f"dev-qos{qos}")
    session.start()
    _wait(lambda: session.connected)
    for i in range(20):
        session.publish("speed", f"{session.root}/telemetry/speed", str(i).encode(), qos)
    _wait(lambda: len(sub.messages) >= 20)
    _wait(lambda: sum(e["name"] == "mqtt publish speed" for e in seen) == 20)  # acks back
    session.stop()
    sub.close()
    assert session.client.socket() is None  # DISCONNECT sent and the socket closed, not leaked
    assert [m.payload for m in sub.messages] == [str(i).encode() for i in range(20)]
    assert {m.qos for m in sub.messages} == {qos}
    names = {(e["request_type"], e["name"]) for e in seen}
    assert names == {("MQTT", "mqtt connect"), ("MQTT", "mqtt publish speed")}
    publishes = [e for e in seen if e["name"] == "mqtt publish speed"]
    assert len(publishes) == 20 and all(e["exception"] is None for e in publishes)
    # ...through paho holding C locks, not gevent's (see gevent_loop)
    for name, reentrant in PAHO_LOCKS.items():
        assert type(getattr(session.client, name)) is type(
            NATIVE_RLOCK() if reentrant else NATIVE_LOCK()
        )


def test_a_paho_without_the_locks_it_swaps_fails_loudly():
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="renamed")
    del client._out_message_mutex
    with pytest.raises(
        RuntimeError, match=r"paho-mqtt 2\.\d+\.\d+ has no Client\._out_message_mutex"
    ):
        GeventMqttLoop().attach(client)


def test_retained_birth_and_last_will_on_a_killed_connection(broker):
    env, _ = _env()
    session = _session(broker, env, device="dev-will")
    session.start()
    _wait(lambda: session.connected)
    late = Subscriber(broker.port, "mendersim/automotive/dev-will/status")
    _wait(lambda: late.messages)  # retained: a late subscriber still gets the birth
    birth = json.loads(late.messages[0].payload)
    assert late.messages[0].retain and birth["state"] == "online"
    assert birth["device_type"] == "tcu"
    session._stopped = True  # no reconnect: the device stays dead
    session.drop()
    _wait(lambda: any(json.loads(m.payload)["state"] == "lost" for m in late.messages))
    late.close()


def test_persistent_session_gets_what_was_sent_while_offline(broker):
    env, _ = _env()
    first = _session(broker, env, device="dev-persist", session_expiry=300)
    got: list[dict] = []
    first._on_command = lambda s, c: got.append(c)
    first.start()
    _wait(lambda: first.connected)
    gevent.sleep(0.2)  # the subscription is in place
    first.stop()
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    sender.publish(
        "mendersim/automotive/dev-persist/commands",
        json.dumps({"id": "c1", "command": "ping"}),
        qos=1,
    ).wait_for_publish(5)
    sender.disconnect()
    sender.loop_stop()
    again = _session(broker, env, device="dev-persist", session_expiry=300)
    again._on_command = lambda s, c: got.append(c)
    again.start()
    _wait(lambda: got)
    again.stop()
    assert got[0]["id"] == "c1"


def test_refused_credentials_are_one_clear_error_not_a_retry_storm(tmp_path):
    with running_broker(tmp_path, password="right") as secured:
        env, seen = _env()
        session = _session(secured, env, username="device", password="wrong")
        session.start()
        _wait(lambda: session.refused is not None)
        gevent.sleep(1.5)
        session.stop()
    connects = [e for e in seen if e["name"] == "mqtt connect"]
    assert len(connects) == 1
    assert "Not authorized" in str(connects[0]["exception"]) or "password" in str(
        connects[0]["exception"]
    )


def test_broker_restart_reconnects_and_counts_each_loss_once(tmp_path):
    with running_broker(tmp_path) as restarting:
        env, seen = _env()
        session = _session(restarting, env, device="dev-restart")
        session.start()
        _wait(lambda: session.connected)
        restarting.stop()
        _wait(lambda: not session.connected)
        for i in range(5):  # kept in the outbox meanwhile
            session.publish("speed", f"{session.root}/telemetry/speed", str(i).encode(), 1)
        restarting.start()
        sub = Subscriber(restarting.port, f"{session.root}/telemetry/#")
        _wait(lambda: len(sub.messages) >= 5, timeout=30)
        session.stop()
        sub.close()
    assert sorted(m.payload for m in sub.messages) == [str(i).encode() for i in range(5)]
    assert sum(1 for e in seen if e["name"] == "mqtt disconnect") == 1
    ok_connects = [e for e in seen if e["name"] == "mqtt connect" and e["exception"] is None]
    assert len(ok_connects) == 2
