"""A gateway against a real Mosquitto: what the platform receives, recomputed from the sensor
models under the same seed (aggregates, deadband reports, alerts, the reduction ratio), and
store-and-forward across a stopped and restarted broker with its overflow counted."""

from __future__ import annotations

import json
import math
import time
from types import SimpleNamespace

import gevent
import pytest
from locust.event import Events
from mqtt_broker import Subscriber, running_broker

from mendersim.harness.reporting import measures
from mendersim.telemetry import payload, spec
from mendersim.telemetry.gateway import Gateway, child_id
from mendersim.telemetry.gevent_loop import GeventMqttLoop
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.session import Session
from mendersim.telemetry.settings import MqttSettings

pytestmark = pytest.mark.integration

SEED = 5
PROFILE = "gw-test"
ANOMALIES = {
    "rate": 0.6,
    "slot_s": 300,
    "types": {
        "spike": {"weight": 3, "duration_s": {"min": 20, "max": 60}},
        "missing": {"weight": 1, "duration_s": {"min": 10, "max": 40}},
        "drift": {"weight": 1, "duration_s": {"min": 60, "max": 240}},
    },
}


def _spec(children: int, window: float, buffer: int = 10_000) -> spec.TelemetrySpec:
    result = spec.from_profile(
        {
            "name": PROFILE,
            "telemetry": {
                "interval_s": 1,
                "qos": 1,
                "gateway": {
                    "children": children,
                    "window_s": window,
                    "aggregates": ["min", "max", "mean", "count", "last"],
                    "buffer": buffer,
                },
                "streams": [
                    # spikes (8 sigma) pass the alert limit; the noise alone almost never does
                    {"name": "vibration", "base": 2.0, "noise": 0.3, "alert_above": 3.5},
                    {
                        "name": "temperature",
                        "base": 40,
                        "noise": 0.5,
                        "interval_s": 3,
                        "daily": {"amplitude": 3},
                    },
                    {
                        "name": "pressure",
                        "base": 6.0,
                        "noise": 0.1,
                        "deadband": 0.15,
                        "alert_below": 5.7,
                    },
                ],
                "anomalies": ANOMALIES,
            },
        }
    )
    assert result is not None
    return result


def _env():
    events = Events()
    seen: list[dict] = []
    events.request.add_listener(lambda **kw: seen.append(kw))
    env = SimpleNamespace(events=events)
    ratios: list[float] = []
    measures.of(env).measured.add_listener(
        lambda name, response_time, **_: (
            ratios.append(response_time) if name == "edge reduction ratio" else None
        )
    )
    return env, seen, ratios


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.02)


def _gateway(env, port: int, device: str, s: spec.TelemetrySpec, scale: float, **session):
    settings = MqttSettings(host="127.0.0.1", port=port)
    link = Session(env, GeventMqttLoop(), settings, device, PROFILE, seed=SEED, **session)
    gateway = Gateway(link, s, device, {}, SEED, origin=time.time(), time_scale=scale)
    return link, gateway


def _decoded(messages) -> list[tuple[str, dict]]:
    """(kind, body) in arrival order, without QoS 1 duplicates; deadband reports as
    {"sensor", "stream", "seq", "ts", "value"}."""
    out, seen = [], set()
    for m in messages:
        if (m.topic, m.payload) in seen or m.topic.endswith("/status"):
            continue
        seen.add((m.topic, m.payload))
        kind = m.topic.rsplit("/", 2)[-2] if "/telemetry/" in m.topic else m.topic.rsplit("/")[-1]
        if kind == "telemetry":
            message = payload.decode(m.payload)
            ((ts, value),) = message.readings
            body = {
                "sensor": message.device,
                "stream": message.stream,
                "seq": message.seq,
                "ts": ts,
                "value": value,
            }
        else:
            body = json.loads(m.payload)
        out.append((kind, body))
    return out


def _t(kind: str, body: dict) -> float:
    return body["end"] if kind == "aggregates" else body["ts"]


def _topic(kind: str, body: dict) -> tuple:
    """What a message's seq counts within: a deadband stream, or a sensor's aggregates or
    alerts."""
    return (kind, body["sensor"], body["stream"] if kind == "telemetry" else None)


def _raw(sensors: DeviceSensors, stream: spec.StreamSpec, start: float, end: float, offset: float):
    """The model's readings in [start, end) on the stream's interval grid, shifted by the
    gateway's offset (missing readings left out)."""
    out = []
    t = math.ceil((start - offset) / stream.interval_s) * stream.interval_s + offset
    while t < end:
        value = sensors.read(stream, t)
        if value is not None:
            out.append((t, value))
        t += stream.interval_s
    return out


def _alarm(stream: spec.StreamSpec, value: float) -> str | None:
    if stream.alert_above is not None and value > stream.alert_above:
        return "above"
    if stream.alert_below is not None and value < stream.alert_below:
        return "below"
    return None


def test_aggregates_deadband_and_alerts_match_the_raw_readings(broker):
    s = _spec(children=3, window=20.0)
    env, seen, ratios = _env()
    sub = Subscriber(broker.port, f"mendersim/{PROFILE}/gw-1/#", qos=1)
    link, gateway = _gateway(env, broker.port, "gw-1", s, scale=0.002)  # 1 s of device time: 2 ms
    link.start()
    _wait(lambda: link.connected)
    gateway.start()
    _wait(lambda: gateway.selected >= 1500, timeout=60)
    gateway.stop()
    left = gateway.forward.waiting  # never sent: the device stopped
    _wait(lambda: len(_decoded(sub.messages)) >= gateway.selected - left, timeout=30)
    link.stop()
    sub.close()
    got = _decoded(sub.messages)
    assert len(got) == gateway.selected - left  # every message sent arrived, once

    aggregates = [b for k, b in got if k == "aggregates"]
    first = min(aggregates, key=lambda b: b["end"])
    covered_from, last_end = first["start"], max(b["end"] for b in aggregates)
    window = s.gateway.window_s
    assert len(aggregates) >= 3 * 10
    children = [DeviceSensors(s, child_id("gw-1", i), {}, SEED) for i in range(3)]
    by_id = {c.device_id: c for c in children}
    vibration, temperature, pressure = s.streams
    at = {st.name: gateway.offset(st) for st in s.streams}  # where in its intervals it reads
    assert at["temperature"] == 1.0  # this gateway reads its 3 s stream at 1 s past the grid
    # every window's aggregates are those of the model's readings in [start, end)
    for body in aggregates:
        assert body["gateway"] == "gw-1" and body["end"] - body["start"] <= window
        assert set(body["streams"]) == {"vibration", "temperature"}
        for stream in (vibration, temperature):
            values = [
                v
                for _, v in _raw(
                    by_id[body["sensor"]], stream, body["start"], body["end"], at[stream.name]
                )
            ]
            want = {"count": len(values)}
            if values:
                want |= {
                    "min": min(values),
                    "max": max(values),
                    "mean": sum(values) / len(values),
                    "last": values[-1],
                }
            else:
                want |= dict.fromkeys(("min", "max", "mean", "last"))
            assert body["streams"][stream.name] == pytest.approx(want, abs=1e-4)
    # (Missing-data anomalies fall where the seed puts them in device time, which starts at the
    # wall clock: the windows above match the model's readings whether or not they hold one.)
    # deadband reports and alerts: those the raw readings call for, in [covered_from, last_end)
    alerts_seen = 0
    for sensors in children:
        name = sensors.device_id
        band, last = [], None
        for t, v in _raw(sensors, pressure, covered_from, last_end, at["pressure"]):
            if last is None or abs(v - last) > pressure.deadband:
                band.append((t, pytest.approx(v, abs=1e-4)))
                last = v
        reports = [
            (b["ts"], b["value"])
            for k, b in got
            if k == "telemetry" and b["sensor"] == name and b["ts"] < last_end
        ]
        assert reports == band and len(band) > 10
        for stream in (vibration, pressure):
            want, state = [], None
            for t, v in _raw(sensors, stream, covered_from, last_end, at[stream.name]):
                now = _alarm(stream, v)
                if now != state:
                    want += [("cleared", state, t)] if state else []
                    want += [("raised", now, t)] if now else []
                    state = now
            alerts = [
                (b["state"], b["limit"], b["ts"])
                for k, b in got
                if k == "alerts"
                and b["sensor"] == name
                and b["stream"] == stream.name
                and b["ts"] < last_end
            ]
            assert alerts == want
            alerts_seen += len(alerts)
    assert alerts_seen > 0
    # alerts go out at once: each arrives before the aggregates of the window it fell in
    order = {(b["sensor"], b["end"]): i for i, (k, b) in enumerate(got) if k == "aggregates"}
    for i, (kind, body) in enumerate(got):
        end = (body["ts"] // window + 1) * window if kind == "alerts" else None
        if end is not None and (body["sensor"], end) in order:
            assert i < order[(body["sensor"], end)]
    # the reduction ratio: per window, readings in over messages the rules selected
    closes = sorted({b["end"] for b in aggregates})
    expected, since = [], covered_from
    for end in closes:
        readings = sum(
            len(_raw(c, st, since, end, at[st.name])) for c in children for st in s.streams
        )
        selected = 3 + sum(1 for k, b in got if k != "aggregates" and since <= b["ts"] < end)
        expected.append(readings / selected)
        since = end
    assert ratios[: len(expected)] == pytest.approx(expected)
    names = {e["name"] for e in seen}
    assert {
        "edge latency",
        "mqtt publish edge aggregates",
        "mqtt publish edge alert",
        "mqtt publish edge deadband",
    } <= names
    # sent at once, or after waiting behind unacknowledged messages on a busy broker
    sent = [e for e in seen if e["name"] in ("edge latency", "edge forward delay")]
    assert len(sent) == gateway.selected - left and all(
        e["request_type"] == "MQTT" and e["exception"] is None for e in sent
    )


@pytest.mark.parametrize("fault", ["broker restart", "network outage"])
def test_store_and_forward_while_offline(tmp_path, fault):
    s = _spec(children=2, window=10.0, buffer=40)
    env, seen, _ = _env()
    # the device's link is down (an outage), or held down after a broker restart until the
    # platform listens again
    hold = [False]
    # the platform's broker keeps its subscriber's session over a restart: what it acknowledged
    # to the device before stopping is delivered after, not lost to the test's count
    with running_broker(tmp_path, persistence=True) as restarting:
        topic = f"mendersim/{PROFILE}/gw-sf/#"
        before = Subscriber(restarting.port, topic, qos=1, session="platform-before")
        link, gateway = _gateway(
            env, restarting.port, "gw-sf", s, scale=0.005, offline=lambda: hold[0]
        )
        link.start()
        _wait(lambda: link.connected)
        gateway.start()
        _wait(lambda: gateway.selected >= 30)
        if fault == "broker restart":
            restarting.stop()
        hold[0] = True
        _wait(lambda: not link.connected)
        _wait(lambda: gateway.forward.dropped_total >= 25, timeout=60)
        if fault == "broker restart":
            restarting.start()
        after = Subscriber(restarting.port, topic, qos=1)
        hold[0] = False
        _wait(lambda: any(m.topic.endswith("/edge/dropped") for m in after.messages), timeout=60)
        gateway.stop()
        left = gateway.forward.waiting
        _wait(lambda: link.unacknowledged == 0)
        gevent.sleep(0.3)
        link.stop()
        before.close()
        after.close()
    old, new = _decoded(before.messages), _decoded(after.messages)
    report_at = next(i for i, (k, _) in enumerate(new) if k == "dropped")
    report = new[report_at][1]
    overflow = [e for e in seen if e["name"] == "edge overflow"]
    assert report["dropped"] == report["dropped_total"] == gateway.forward.dropped_total
    assert len(overflow) == report["dropped"] >= 25
    assert all(str(e["exception"]) == "store-and-forward buffer full" for e in overflow)
    # the buffer went out in order: per topic without gaps, all of it after what was dropped
    flushed = [(k, b) for k, b in new[:report_at]]
    times = [_t(k, b) for k, b in flushed]
    assert len(flushed) >= 40
    # MQTT keeps order within a topic only: a message in flight when the link went down is sent
    # again after the reconnect and may arrive after a later one of another topic.
    by_topic: dict[tuple, list[float]] = {}
    for kind, body in flushed:
        by_topic.setdefault(_topic(kind, body), []).append(_t(kind, body))
    assert all(seen == sorted(seen) for seen in by_topic.values()), by_topic
    assert min(t for t in times if t > report["first"]) >= report["last"]
    per_topic: dict[tuple, list[int]] = {}
    for kind, body in old + new:
        if kind != "dropped":
            per_topic.setdefault(_topic(kind, body), []).append(body["seq"])
    # seqs count from 1 per topic: those never seen below the last one seen were dropped (a
    # topic's newest messages may be dropped too, with nothing after them to show the gap)
    gaps = sum(max(seqs) - len(set(seqs)) for seqs in per_topic.values())
    assert 0 < gaps <= report["dropped"]
    # nothing lost unseen and nothing counted twice: every message selected arrived, was
    # dropped and reported, or was still waiting when the device stopped
    arrived = len({(*_topic(k, b), b["seq"]) for k, b in old + new if k != "dropped"})
    assert arrived + report["dropped"] == gateway.selected - left
    forwarded = [e for e in seen if e["name"] == "edge forward delay"]
    live = [e for e in seen if e["name"] == "edge latency"]
    assert len(forwarded) + len(live) + len(overflow) == gateway.selected + 1 - left  # + report
    assert len(forwarded) >= 40
