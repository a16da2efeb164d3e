"""A Locust run of gateway devices against a real Mosquitto and a real time-series server: the
platform gets each child sensor's aggregates, and the edge statistics reach Locust's CSVs and
the InfluxDB points under their own names."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "influx"))

from harness_helpers import TIME_SCALE, device_rows, locust, seed, stats_rows
from tsdb import victoria_metrics

from mendersim.paths import profiles_root
from mendersim.telemetry.truth import read_truth

pytestmark = pytest.mark.integration

GATEWAYS, CHILDREN = 3, 2


def _gateway_profile(folder: Path) -> Path:
    """The shipped gateway profile with fewer sensors and slower readings (the run is scaled
    1/1800) and a steady link, so every device streams the whole run."""
    doc = yaml.safe_load((profiles_root() / "industries" / "iot-gateway.yaml").read_text())
    doc["network"] = {"profile": "none"}
    doc["telemetry"]["interval_s"] = 60
    doc["telemetry"]["gateway"] |= {"children": CHILDREN, "window_s": 600}
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _points(vm: str, run_id: str, step: str) -> dict[str, int]:
    """request_type -> the count InfluxDB holds for one step of the run."""
    selector = f'{{__name__="mendersim_step_count",run_id="{run_id}",step="{step}"}}'
    answer = requests.get(f"{vm}/api/v1/export", params={"match[]": selector}, timeout=10)
    answer.raise_for_status()
    totals: dict[str, int] = {}
    for line in answer.text.splitlines():
        series = json.loads(line)
        kind = series["metric"]["request_type"]
        totals[kind] = totals.get(kind, 0) + int(sum(series["values"]))
    return totals


def test_gateway_fleet_sends_aggregates_and_reports_edge_statistics(tmp_path, broker):
    _gateway_profile(tmp_path)
    db = seed(tmp_path, [{"profile": "./gateway.yaml", "count": GATEWAYS}])
    aggregates: list[dict] = []
    lock = threading.Lock()

    def on_message(client, userdata, message):
        if message.topic.endswith("/aggregates"):
            with lock:
                aggregates.append(json.loads(message.payload))

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("mendersim/iot-gateway/#", qos=1)
    sub.loop_start()
    csv = tmp_path / "run" / "stats"
    truth = tmp_path / "run" / "anomalies.jsonl"
    (tmp_path / "vm").mkdir()
    with victoria_metrics(tmp_path / "vm") as vm:
        proc = locust(
            "--headless",
            *("-u", str(GATEWAYS), "-r", str(GATEWAYS), "-t", "10s"),
            *("--mendersim-db", str(db), "--mendersim-time-scale", TIME_SCALE),
            *("--csv", str(csv), "--exit-code-on-error", "0"),
            *("--mendersim-mqtt-host", "127.0.0.1", "--mendersim-mqtt-port", str(broker.port)),
            *("--mendersim-telemetry-truth", str(truth)),
            *("--influx-url", vm, "--influx-interval", "2", "--influx-run-id", "edge-1"),
            log=tmp_path / "locust.log",
        )
        assert proc.wait(timeout=90) == 0, (tmp_path / "locust.log").read_text()[-3000:]
        time.sleep(0.5)
        sub.disconnect()
        sub.loop_stop()
        rows = stats_rows(csv)
        device = device_rows(csv.parent)
        # the run's own last record of its steps: Locust's CSV may lack the last second
        final = json.loads((csv.parent / "timeline.jsonl").read_text().splitlines()[-1])
        (latency,) = (s["count"] for s in final["steps"] if s["name"] == "edge latency")
        ratio = device[("DEVICE", "edge reduction ratio")]
        deadline = time.monotonic() + 30
        while True:  # fresh samples become searchable within seconds, more on a busy machine
            found = (
                _points(vm, "edge-1", "edge latency"),
                _points(vm, "edge-1", "edge reduction ratio"),
            )
            if found == ({"MQTT": latency}, {"DEVICE": int(ratio["Request Count"])}):
                break
            log = (tmp_path / "locust.log").read_text()[-2000:]
            assert time.monotonic() < deadline, (found, latency, ratio["Request Count"], log)
            time.sleep(0.5)
    # each gateway's sensors, and nothing else, send aggregates
    sensors = {a["sensor"] for a in aggregates}
    gateways = {a["gateway"] for a in aggregates}
    children = {f"{g}-s{i:03d}" for g in gateways for i in range(1, CHILDREN + 1)}
    assert len(gateways) == GATEWAYS and sensors == children
    assert int(rows[("MQTT", "mqtt publish edge aggregates")]["Request Count"]) >= len(sensors)
    assert int(rows[("MQTT", "edge latency")]["Failure Count"]) == 0
    # a window's readings (2 sensors, 5 streams, 10 readings each) over its messages (2
    # aggregates plus a few deadband reports and alerts)
    assert 1 < float(ratio["Average Response Time"]) <= CHILDREN * 5 * 10 / CHILDREN
    assert int(ratio["Request Count"]) >= GATEWAYS
    # the ground truth names the child sensors whose readings carried an anomaly
    assert {a["device"] for a in read_truth(truth)} <= children
