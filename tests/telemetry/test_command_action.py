"""The Fleet tab's "Command" action end to end: a web-UI run whose devices hold MQTT sessions to a
real Mosquitto; a command posted to /mendersim/command reaches the share of the fleet, the
devices act and acknowledge, and the round trips show in the run's statistics."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))

from harness_helpers import TIME_SCALE, locust, seed, wait_for

from mendersim.server.process import free_port

pytestmark = pytest.mark.integration
DEVICES = 10


def _command_entry(base: str) -> dict | None:
    stats = requests.get(f"{base}/stats/requests", timeout=5).json()["stats"]
    return next((s for s in stats if s["name"] == "mqtt command"), None)


def test_fleet_tab_command_reaches_the_share_and_its_round_trips_are_statistics(tmp_path, broker):
    db = seed(tmp_path, [{"profile": "smart-building", "count": DEVICES}])
    acks: list[dict] = []
    lock = threading.Lock()

    def on_message(client, userdata, message):
        with lock:
            acks.append(json.loads(message.payload))

    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("mendersim/+/+/acks", qos=1)
    watcher.loop_start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    run = locust(
        "--web-host", "127.0.0.1", "--web-port", str(port),
        "--mendersim-db", str(db), "--mendersim-time-scale", TIME_SCALE,
        "--mendersim-mqtt-host", "127.0.0.1", "--mendersim-mqtt-port", str(broker.port),
        "--mendersim-telemetry-truth", str(tmp_path / "anomalies.jsonl"),
        log=log,
    )  # fmt: skip
    try:
        wait_for(lambda: requests.get(base, timeout=5).text, bool, 60)
        form = requests.get(f"{base}/mendersim/command", timeout=5).text
        assert all(f"<option>{c}</option>" in form for c in ("reboot", "ping", "set-config"))
        refused = requests.post(f"{base}/mendersim/command", data={"share": "0.5"}, timeout=5)
        assert refused.status_code == 409 and "start a swarm" in refused.json()["message"]
        answer = requests.post(
            f"{base}/swarm", data={"user_count": DEVICES, "spawn_rate": DEVICES, "host": ""},
            timeout=10,
        ).json()  # fmt: skip
        assert answer["success"], answer
        # the commander learns the fleet from the devices' retained births
        wait_for(
            lambda: requests.post(
                f"{base}/mendersim/command", data={"command": "ping", "share": "1"}, timeout=5
            ).json(),
            lambda a: (
                a["success"]
                and a["message"]
                == f"ping sent to {DEVICES} of the {DEVICES} devices known over MQTT"
            ),
            30,
        )
        answer = requests.post(  # JSON, as scripts post it
            f"{base}/mendersim/command",
            json={"command": "set-config", "share": 1, "args": {"sample_s": 5}},
            timeout=5,
        ).json()
        assert answer["success"], answer
        entry = wait_for(
            lambda: _command_entry(base), lambda e: e and e["num_requests"] >= 2 * DEVICES, 30
        )
        assert entry["num_failures"] == 0
        bad = requests.post(
            f"{base}/mendersim/command", data={"command": "format-disk", "share": "1"}, timeout=5
        )
        assert bad.status_code == 400 and "format-disk" in bad.json()["message"]
        bad = requests.post(f"{base}/mendersim/command", data={"args": "[1]"}, timeout=5)
        assert bad.status_code == 400 and "args" in bad.json()["message"]
        rows = requests.get(f"{base}/stats/requests", timeout=5).json()["extended_stats"][0]
        names = {r["name"]: r["value"] for r in rows["data"]}
        assert names["command round trip"].startswith(f"{entry['num_requests']} × median")
        requests.get(f"{base}/stop", timeout=10)
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=60)
        watcher.disconnect()
        watcher.loop_stop()
    assert code == 0, log.read_text()[-3000:]
    configured = [a for a in acks if a["command"] == "set-config"]
    assert len(configured) >= DEVICES
    assert all(a["status"] == "ok" and a["result"]["config"] == {"sample_s": 5} for a in configured)
    pinged = {a["id"] for a in acks if a["command"] == "ping" and a["status"] == "ok"}
    assert len(pinged) >= DEVICES
