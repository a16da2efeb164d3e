"""Every Grafana dashboard query runs on a real InfluxQL engine (Debian's influxdb 1.x) over points
made by the listener's own point builders, and returns data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
import yaml
from tsdb import REPO, influxdb1

from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting.influx import (
    GeneratorHealth,
    fleet_points,
    generator_point,
    run_point,
    step_points,
    with_tags,
)
from mendersim.harness.reporting.influx_stats import IntervalAggregator
from mendersim.telemetry.session import MqttError

pytestmark = pytest.mark.integration

GRAFANA = REPO / "reports" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DB = "mendersim"
RUN_ID = "20261122-120000"
START_MS = 1_795_000_000_000
INTERVALS = 6
INTERVAL_MS = 10_000
WORKERS = ("worker-0", "worker-1")
# step -> (request type, response time ms, bytes)
STEPS = {
    "auth": ("POST", 25.0, 300),
    "inventory": ("PATCH", 40.0, 0),
    "deployments/next": ("GET", 12.0, 500),
    "status:downloading": ("PUT", 15.0, 0),
    "status:installing": ("PUT", 15.0, 0),
    "status:success": ("PUT", 15.0, 0),
    "download": ("GET", 900.0, 1_000_000),
    "time to accepted": ("DEVICE", 30_000.0, 0),
    "deployment duration": ("DEVICE", 200_000.0, 0),
    "install downtime": ("DEVICE", 20_000.0, 0),
    "reboot downtime": ("DEVICE", 45_000.0, 0),
    "download throughput (kB/s)": ("DEVICE", 1_100.0, 1_000_000),
    "scheduler lag p99": ("HARNESS", 12.0, 0),
    "mqtt connect": ("MQTT", 30.0, 0),
    "mqtt publish temperature": ("MQTT", 0.2, 120),
    "mqtt publish vibration": ("MQTT", 8.0, 120),
    "mqtt publish ack": ("MQTT", 9.0, 80),
    "mqtt overflow": ("MQTT", 0.0, 0),
    "mqtt command": ("MQTT", 180.0, 0),
    "mqtt command delivery": ("MQTT", 90.0, 0),
    "mqtt disconnect": ("MQTT", 0.0, 0),
}
# steps whose every event here is a failure, with the reason the session gives
ALWAYS_FAILING = {"mqtt overflow": "outbox full while disconnected", "mqtt disconnect": "offline"}
REQUESTS_PER_STEP = 5  # per worker, profile and interval
RUN_TAGS = (("test_env", "staging"), ("test_version", "4.1.0"))  # --test-env, --test-version


class HttpError(Exception):
    pass


def sample_lines() -> list[str]:
    """Several intervals of two workers and two profiles, as the listener writes them."""
    lines = []
    for interval in range(INTERVALS):
        ts_ms = START_MS + (interval + 1) * INTERVAL_MS
        for n, worker in enumerate(WORKERS):
            aggregator = IntervalAggregator(0.0)
            for profile in ("automotive", "medical"):
                for step, (request_type, response_time, size) in STEPS.items():
                    for i in range(REQUESTS_PER_STEP):
                        failed = step in ("inventory", "mqtt connect", "mqtt command") and i == 0
                        failure = HttpError() if failed else None
                        if step in ALWAYS_FAILING:
                            failure = MqttError(ALWAYS_FAILING[step])
                        elif failed and request_type == "MQTT":
                            failure = MqttError("timeout")
                        aggregator.record(
                            request_type,
                            step,
                            response_time + i,
                            size,
                            failure,
                            {"profile": profile},
                            type("Answer", (), {"status_code": 503 if failed else 200})(),
                        )
            points = step_points(aggregator.drain(INTERVAL_MS / 1000), RUN_ID, worker, ts_ms)
            health = GeneratorHealth(40.0 + n, 150_000_000, interval, 0)
            points.append(generator_point(health, RUN_ID, worker, ts_ms))
            lines.extend(point.to_line_protocol() for point in with_tags(points, RUN_TAGS))
        previous = snapshot(interval - 1) if interval else None
        points = fleet_points(snapshot(interval), previous, RUN_ID, ts_ms)
        points.append(run_point(RUN_ID, 200, len(WORKERS), ts_ms, "nightly rollout"))
        lines.extend(p.to_line_protocol() for p in with_tags(points, RUN_TAGS))
    return lines


def snapshot(interval: int) -> FleetSnapshot:
    return FleetSnapshot(
        users=200,
        workers=2,
        devices_by_status={"accepted": 150 + interval, "pending": 50 - interval},
        deployments_by_state={"downloading": 10, "installing": 5, "rebooting": 2},
        outcomes={"success": 20 * interval, "failure": interval},
        download_bytes=8_000_000 * interval,
        download_seconds=4.0 * interval,
        scheduler_lag_p99_s=0.02,
        scheduler_lag_max_s=0.3,
        rollout_started_at=START_MS / 1000,
        rollout_finished_s=55.0 if interval > 3 else None,
        rollout_targets=100,
    )


def substitute(query: str, test_env: str = ".*", test_version: str = ".*") -> str:
    """What Grafana does to a raw InfluxQL query before sending it (variables default to All)."""
    end_ms = START_MS + (INTERVALS + 1) * INTERVAL_MS
    return (
        query.replace("$test_env", test_env)
        .replace("$test_version", test_version)
        .replace("$timeFilter", f"time >= {START_MS}ms and time <= {end_ms}ms")
        .replace("$__interval_ms", str(INTERVAL_MS))
        .replace("$__interval", f"{INTERVAL_MS // 1000}s")
        .replace("$run_id", re.escape(RUN_ID))
    )


def all_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel or variable, query) for every query in every dashboard."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            found.append((path.name, f"variable {variable['name']}", variable["query"]))
        for panel in dashboard["panels"]:
            found.extend((path.name, panel["title"], t["query"]) for t in panel["targets"])
    return found


@pytest.fixture(scope="module")
def influx(tmp_path_factory) -> str:
    with influxdb1(tmp_path_factory.mktemp("influxdb")) as url:
        requests.post(f"{url}/query", params={"q": f"CREATE DATABASE {DB}"}, timeout=10)
        answer = requests.post(
            f"{url}/write",
            params={"db": DB, "precision": "ms"},
            data="\n".join(sample_lines()).encode(),
            timeout=30,
        )
        assert answer.status_code == 204, answer.text
        yield url


def run_query(url: str, query: str, **variables: str) -> list[dict]:
    answer = requests.post(
        f"{url}/query", params={"db": DB, "q": substitute(query, **variables)}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert "error" not in result, result["error"]
    return result.get("series", [])


def test_dashboards_cover_the_three_views():
    assert [p.name for p in DASHBOARDS] == [
        "fleet.json",
        "generator-health.json",
        "mqtt.json",
        "overview.json",
    ]


@pytest.mark.parametrize(
    ("dashboard", "where", "query"),
    all_queries(),
    ids=lambda value: re.sub(r"\W+", "-", value)[:60],
)
def test_query_returns_data(influx, dashboard, where, query):
    series = run_query(influx, query)
    assert series, f"{dashboard} / {where}: no series"
    values = [v for s in series for row in s["values"] for v in row[1:] if v is not None]
    assert values, f"{dashboard} / {where}: only empty values"


def variables(dashboard: str = "overview.json") -> dict[str, dict]:
    document = json.loads((GRAFANA / "dashboards" / dashboard).read_text())
    return {v["name"]: v for v in document["templating"]["list"]}


def test_run_variable_lists_the_run(influx):
    series = run_query(influx, variables()["run_id"]["query"])
    assert [row[1] for row in series[0]["values"]] == [RUN_ID]


def test_runs_are_picked_by_environment_and_version(influx):
    """The run metadata variables list what runs were tagged with and narrow the run list."""
    found = {name: run_query(influx, variables()[name]["query"]) for name in dict(RUN_TAGS)}
    assert {name: [row[1] for row in s[0]["values"]] for name, s in found.items()} == {
        name: [value] for name, value in RUN_TAGS
    }
    run_id = variables()["run_id"]["query"]
    assert run_query(influx, run_id, test_env="staging", test_version="4\\.1\\.0")
    assert not run_query(influx, run_id, test_env="production")


def test_request_rate_adds_up_over_workers_and_profiles(influx):
    query = (
        'SELECT sum("count") * 1000 / $__interval_ms FROM "mendersim_step" WHERE '
        '"run_id" =~ /^$run_id$/ AND "step" = \'auth\' AND $timeFilter GROUP BY time($__interval)'
    )
    [series] = run_query(influx, query)
    rates = [row[1] for row in series["values"] if row[1]]
    expected = len(WORKERS) * 2 * REQUESTS_PER_STEP / (INTERVAL_MS / 1000)
    assert rates == [pytest.approx(expected)] * INTERVALS


def test_every_panel_uses_the_provisioned_datasource():
    provisioned = yaml.safe_load((GRAFANA / "datasources" / "mendersim-influx.yaml").read_text())
    [datasource] = provisioned["datasources"]
    assert datasource["jsonData"]["version"] == "InfluxQL"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
        uids |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
        assert uids == {datasource["uid"]}, path.name
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names == ["test_env", "test_version", "run_id"]
        assert all(
            '"run_id" =~ /^$run_id$/' in q for _, _, q in all_queries() if not q.startswith("SHOW")
        )


def test_dashboard_provider_points_at_the_dashboards():
    provider = yaml.safe_load((GRAFANA / "dashboards" / "mendersim.yaml").read_text())
    [entry] = provider["providers"]
    assert Path(entry["options"]["path"]).name == "dashboards"
    assert entry["type"] == "file"


def test_sample_lines_are_what_the_listener_writes():
    lines = sample_lines()
    assert any(line.startswith("mendersim_errors,") and "kind=http_503" in line for line in lines)
    assert not any("HttpError" in line for line in lines)  # status wins over the class


NOT_HTTP = ("DEVICE", "HARNESS", "MQTT")


def test_request_panels_show_http_steps_only(influx):
    overview = json.loads((GRAFANA / "dashboards" / "overview.json").read_text())
    [panel] = [p for p in overview["panels"] if p["title"] == "Requests per second by step"]
    series = run_query(influx, panel["targets"][0]["query"])
    http_steps = {step for step, (kind, _, _) in STEPS.items() if kind not in NOT_HTTP}
    assert {s["tags"]["step"] for s in series} == http_steps


def _mqtt_panel(title: str) -> dict:
    mqtt_board = json.loads((GRAFANA / "dashboards" / "mqtt.json").read_text())
    [panel] = [p for p in mqtt_board["panels"] if p["title"] == title]
    return panel


def test_mqtt_publish_rate_is_per_stream_and_adds_up(influx):
    panel = _mqtt_panel("Telemetry published per second by stream")
    series = run_query(influx, panel["targets"][0]["query"])
    assert {s["tags"]["step"] for s in series} == {
        "mqtt publish temperature",
        "mqtt publish vibration",
    }
    expected = len(WORKERS) * 2 * REQUESTS_PER_STEP / (INTERVAL_MS / 1000)
    for one in series:
        assert [row[1] for row in one["values"] if row[1]] == [pytest.approx(expected)] * INTERVALS


def test_mqtt_command_round_trip_percentiles_and_failures(influx):
    [series] = run_query(
        influx, _mqtt_panel("Command round trip (sent to acknowledged)")["targets"][0]["query"]
    )
    assert series["columns"] == ["time", "p50", "p95", "p99"]
    rows = [row for row in series["values"] if row[1] is not None]
    # five samples of 180..184 ms per worker and profile: the percentiles stay within them
    assert len(rows) == INTERVALS and all(180 <= v <= 184 for row in rows for v in row[1:])
    [series] = run_query(
        influx, _mqtt_panel("Commands per second: acknowledged and failed")["targets"][0]["query"]
    )
    per_s = INTERVAL_MS / 1000
    workers_profiles = len(WORKERS) * 2
    ok = workers_profiles * (REQUESTS_PER_STEP - 1) / per_s
    failed = workers_profiles / per_s
    assert [row[1:] for row in series["values"] if row[1]] == [
        [pytest.approx(ok), pytest.approx(failed)]
    ] * INTERVALS


def test_mqtt_connection_losses_are_grouped_by_reason(influx):
    panel = _mqtt_panel("Connections lost per second by reason")
    series = run_query(influx, panel["targets"][0]["query"])
    assert {s["tags"]["kind"] for s in series} == {"mqtt_offline"}
    failures = run_query(
        influx,
        _mqtt_panel("Telemetry publish failures and overflow per second")["targets"][0]["query"],
    )
    steps = {s["tags"]["step"]: [r[1] for r in s["values"] if r[1]] for s in failures}
    assert steps["mqtt overflow"] and not steps.get("mqtt publish temperature")
