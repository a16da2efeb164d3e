"""The report's MQTT section from a real run against Mosquitto: streams and command round trips
as in Locust's CSV, anomaly counts as in the ground-truth file of the run folder."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "harness"))
sys.path.insert(0, str(REPO / "tests" / "telemetry"))
from harness_helpers import TIME_SCALE, locust, seed, stats_rows  # noqa: E402
from mqtt_broker import running_broker  # noqa: E402
from report_helpers import assert_draws, parse, rows_by  # noqa: E402

from mendersim.telemetry.truth import read_truth  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mqtt-report")
    db = seed(tmp, [{"profile": "industrial", "count": 6}])
    folder = tmp / "run"
    with running_broker(tmp_path_factory.mktemp("mosquitto")) as broker:
        proc = locust(
            "--headless", "-u", "6", "-r", "6", "-t", "12s", "--mendersim-db", str(db),
            "--mendersim-time-scale", TIME_SCALE, "--csv", str(folder / "run"),
            "--mendersim-mqtt-host", "127.0.0.1", "--mendersim-mqtt-port", str(broker.port),
            "--mendersim-mqtt-qos", "1", "--mendersim-mqtt-commands", "0.5",
            "--mendersim-mqtt-command-every", "2",
            "--mendersim-telemetry-truth", str(folder / "anomalies.jsonl"),
            log=tmp / "locust.log",
        )  # fmt: skip
        # the industrial profile's intermittent link drops MQTT sessions: Locust exits 1
        assert proc.wait(timeout=90) in (0, 1), (tmp / "locust.log").read_text()[-3000:]
    return folder


def test_mqtt_section_matches_the_csv_and_the_ground_truth(run_dir):
    page = parse(run_dir / "mendersim-report.html")
    assert page.sections == ["run", "fleet", "rollout", "steps", "mqtt"]
    mqtt = rows_by(page.tables["mqtt-figures"], 0, 1)
    csv_mqtt = {k: r for k, r in stats_rows(run_dir / "run").items() if k[0] == "MQTT"}
    assert set(mqtt) == set(csv_mqtt)
    for key, row in csv_mqtt.items():
        # Locust writes its CSV a moment before the run's last sample: never more than it.
        assert 0 < int(row["Request Count"]) <= int(mqtt[key][2]), key
        assert int(row["Failure Count"]) <= int(mqtt[key][3]), key
    assert ("MQTT", "mqtt command") in mqtt and ("MQTT", "mqtt publish machine_current") in mqtt
    # MQTT rows are not HTTP steps
    assert not [k for k in rows_by(page.tables["step-figures"], 0, 1) if k[0] == "MQTT"]
    kinds = dict(page.tables["mqtt-failure-kinds"][1:])
    assert sum(int(n) for n in kinds.values()) == sum(int(mqtt[k][3]) for k in mqtt)
    truth = read_truth(run_dir / "anomalies.jsonl")
    assert truth  # the profile's anomaly rate gives some in a run this long
    by_type = {t: int(n) for t, n in page.tables["anomaly-types"][1:]}
    assert by_type == Counter(a["type"] for a in truth)
    streams = {s: int(n) for s, n in page.tables["anomaly-streams"][1:]}
    assert streams == Counter(f"{a['profile']} / {a['stream']}" for a in truth)
    for chart in ("chart-mqtt-publish", "chart-mqtt-commands", "chart-anomalies"):
        assert chart in page.charts


def test_mqtt_report_draws_and_regenerates_the_same(run_dir):
    report = run_dir / "mendersim-report.html"
    assert_draws(report)
    before = report.read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "report", str(run_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert report.read_text(encoding="utf-8") == before
