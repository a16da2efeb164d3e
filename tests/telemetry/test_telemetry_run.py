"""A Locust run whose devices stream telemetry to a real Mosquitto: what a subscriber receives,
the ground truth, commands with acknowledgements, and the statistics names."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))

from harness_helpers import TIME_SCALE, device_rows, locust, seed, stats_rows

from mendersim.telemetry import payload
from mendersim.telemetry.truth import read_truth

pytestmark = pytest.mark.integration


def test_fleet_streams_telemetry_acks_commands_and_records_ground_truth(tmp_path, broker):
    db = seed(tmp_path, [{"profile": "industrial", "count": 6}])
    received: list[payload.Message] = []
    acks: list[dict] = []
    lock = threading.Lock()

    def on_message(client, userdata, message):
        with lock:
            if message.topic.endswith("/acks"):
                acks.append(json.loads(message.payload))
            elif "/telemetry/" in message.topic:
                received.append(payload.decode(message.payload))
            elif message.topic.endswith("/status") and b'"online"' in message.payload:
                device = json.loads(message.payload)["device"]
                client.publish(
                    f"mendersim/industrial/{device}/commands",
                    json.dumps({"id": device, "command": "ping", "sent": time.time()}),
                    qos=1,
                )

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("mendersim/#", qos=1)
    sub.loop_start()
    csv = tmp_path / "stats"
    truth = tmp_path / "run" / "anomalies.jsonl"
    proc = locust(
        "--headless",
        "-u",
        "6",
        "-r",
        "6",
        "-t",
        "12s",
        "--mendersim-db",
        str(db),
        "--mendersim-time-scale",
        TIME_SCALE,
        "--csv",
        str(csv),
        "--mendersim-mqtt-host",
        "127.0.0.1",
        "--mendersim-mqtt-port",
        str(broker.port),
        "--mendersim-mqtt-qos",
        "1",
        "--mendersim-mqtt-commands",
        "0.5",
        "--mendersim-mqtt-command",
        "reboot",
        "--mendersim-mqtt-command-every",
        "3",
        "--mendersim-telemetry-truth",
        str(truth),
        log=tmp_path / "locust.log",
    )
    # the industrial profile's link drops out (network profile "intermittent"): those losses
    # are the run's only failures, so Locust exits 1
    assert proc.wait(timeout=90) in (0, 1), (tmp_path / "locust.log").read_text()[-3000:]
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    rows = stats_rows(csv)
    mqtt_rows = {name for kind, name in rows if kind == "MQTT"}
    assert {
        "mqtt connect",
        "mqtt publish machine_current",
        "mqtt command delivery",
        "mqtt publish ack",
        "mqtt command",
    } <= mqtt_rows
    # commanded reboots went through the device's reboot and were acknowledged once it was back
    # device-level figures live in the run folder (the folder of --csv), not in Locust's CSV
    reboots = device_rows(csv.parent)[("DEVICE", "reboot downtime")]
    assert int(reboots["Request Count"]) >= 1
    assert int(rows[("MQTT", "mqtt command")]["Failure Count"]) == 0
    # the outages are the only failures: links cut, and connects failing until the link is back
    failures = (csv.parent / "stats_failures.csv").read_text().splitlines()[1:]
    assert all(
        ("mqtt disconnect" in line or "mqtt connect" in line) and "offline" in line
        for line in failures
    ), failures
    assert int(rows[("MQTT", "mqtt connect")]["Request Count"]) >= 6  # more after outages
    published = sum(
        int(rows[("MQTT", n)]["Request Count"])
        for n in mqtt_rows
        if n.startswith("mqtt publish ") and n != "mqtt publish ack"
    )
    # QoS 1 across outages and reboots: every acknowledged message arrived (a message whose
    # acknowledgement was lost with the connection arrives without being counted), and a
    # sequence number never stands for two different messages
    unique = {(m.device, m.stream, m.seq): m.readings for m in received}
    assert 0 < published <= len(unique)
    assert all(unique[(m.device, m.stream, m.seq)] == m.readings for m in received)
    pinged = {a["id"] for a in acks if a["command"] == "ping" and a["status"] == "ok"}
    assert pinged == {m.device for m in received}
    assert any(a["command"] == "reboot" and a["result"] == {"rebooted": True} for a in acks)
    # every reading inside a recorded "missing" anomaly is absent; the truth names real devices
    anomalies = read_truth(truth)
    devices = {m.device for m in received}
    assert anomalies and {a["device"] for a in anomalies} <= devices
    by_stream: dict[tuple[str, str], list[float]] = {}
    for message in received:
        by_stream.setdefault((message.device, message.stream), []).extend(
            ts for ts, _ in message.readings
        )
    for anomaly in anomalies:
        stamps = by_stream.get((anomaly["device"], anomaly["stream"]), [])
        inside = [t for t in stamps if anomaly["start"] <= t < anomaly["end"]]
        if anomaly["type"] == "missing":
            assert not inside
