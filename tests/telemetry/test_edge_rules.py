"""Edge rules on known readings, and the gateway keys of a profile: what a gateway would send."""

from __future__ import annotations

from pathlib import Path

import pytest

from mendersim.errors import ConfigError
from mendersim.fleet.profiles import load_profile
from mendersim.paths import profiles_root
from mendersim.telemetry import spec
from mendersim.telemetry.edge_rules import SensorRules


def _spec(streams: list[dict], gateway: dict | None = None) -> spec.TelemetrySpec:
    section: dict = {"streams": streams}
    if gateway is not None:
        section["gateway"] = gateway
    result = spec.from_profile({"name": "gw", "telemetry": section})
    assert result is not None
    return result


def test_window_aggregates_deadband_and_alerts_on_known_readings():
    s = _spec(
        [
            {"name": "vibration", "base": 2, "alert_above": 7.1, "alert_below": 0.5},
            {"name": "pressure", "base": 6, "deadband": 0.2},
        ],
        {"children": 1, "aggregates": ["min", "max", "mean", "count", "last"]},
    )
    vibration, pressure = s.streams
    rules = SensorRules(s.streams)
    alerts = []
    for t, value in enumerate([2.0, 7.0, 7.2, 9.0, 7.1, 0.4, 0.6]):
        report, raised = rules.feed(vibration, float(t), value)
        assert not report  # an aggregated stream is never reported by exception
        alerts += [(a.state, a.limit, a.threshold, a.t, a.value) for a in raised]
    assert alerts == [
        ("raised", "above", 7.1, 2.0, 7.2),  # strictly past the limit; 9.0 stays in the alarm
        ("cleared", "above", 7.1, 4.0, 7.1),  # 7.1 is within the limits again
        ("raised", "below", 0.5, 5.0, 0.4),
        ("cleared", "below", 0.5, 6.0, 0.6),
    ]
    reports = [
        t
        for t, v in enumerate([6.0, 6.1, 6.19, 6.25, 6.1, 6.3, 6.5])
        if rules.feed(pressure, float(t), v)[0]
    ]
    # the first reading, then each that moved more than 0.2 from the last one reported
    assert reports == [0, 3, 6]
    closed = rules.close(s.gateway.aggregates)
    assert closed == {
        "vibration": {
            "min": 0.4,
            "max": 9.0,
            "mean": pytest.approx(33.3 / 7),
            "count": 7,
            "last": 0.6,
        }
    }
    # the next window starts empty: a window without readings says so
    assert rules.close(("count", "mean")) == {"vibration": {"count": 0, "mean": None}}


def test_gateway_defaults_and_the_shipped_gateway_profile():
    s = _spec([{"name": "t", "base": 1}], {"children": 4})
    assert s.gateway == spec.GatewaySpec(
        children=4, window_s=60.0, aggregates=("min", "max", "mean", "count"), buffer=10_000, qos=0
    )
    shipped = spec.from_profile(load_profile(profiles_root() / "industries" / "iot-gateway.yaml"))
    assert shipped.gateway is not None and shipped.gateway.children == 8
    assert {st.name for st in shipped.streams if st.deadband} == {
        "humidity",
        "line_pressure",
        "battery_voltage",
    }


@pytest.mark.parametrize(
    ("streams", "gateway", "where", "reason"),
    [
        ([{"name": "t", "base": 1, "deadband": 0.5}], None, "streams[0].deadband", "gateway"),
        ([{"name": "t", "base": 1, "alert_above": 5}], None, "streams[0].alert_above", "gateway"),
        (
            [{"name": "t", "base": 1, "alert_above": 5, "alert_below": 5}],
            {"children": 1},
            "streams[0].alert_below",
            "lower than alert_above",
        ),
        (
            [{"name": "t", "base": 1, "interval_s": 120}],
            {"children": 1, "window_s": 60},
            "streams[0].interval_s",
            "longer than the gateway's window",
        ),
    ],
)
def test_edge_rules_a_gateway_cannot_apply_are_config_errors(streams, gateway, where, reason):
    with pytest.raises(ConfigError) as err:
        _spec(streams, gateway)
    assert where in str(err.value) and reason in str(err.value)


def test_bad_gateway_key_in_a_profile_file_names_file_and_key(tmp_path: Path):
    text = (profiles_root() / "industries" / "iot-gateway.yaml").read_text()
    broken = tmp_path / "iot-gateway.yaml"
    broken.write_text(text.replace("children: 8", "children: 0"))
    with pytest.raises(ConfigError) as err:
        load_profile(broken)
    assert str(err.value).startswith(f"{broken}: telemetry.gateway.children")
