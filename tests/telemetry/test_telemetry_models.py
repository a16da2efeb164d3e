"""Sensor models, anomaly injection and ground truth: deterministic, shaped as profiles say."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from mendersim.errors import ConfigError
from mendersim.fleet.profiles import load_profile
from mendersim.paths import profiles_root
from mendersim.telemetry import payload, spec
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.truth import TruthWriter, read_truth

DAY = 86400.0


def _profile(**telemetry) -> dict:
    return {
        "name": "t",
        "quirks": [{"match": {"firmware_version": "old"}, "anomaly_rate": 0.9}],
        "telemetry": telemetry,
    }


SHORT_TYPES = {
    "spike": {"weight": 2, "duration_s": {"min": 30, "max": 120}},
    "missing": {"weight": 1, "duration_s": {"min": 60, "max": 300}},
}


def _stream(**extra) -> dict:
    return {"name": "temp", "base": 20.0, "noise": 0.5, **extra}


def test_readings_are_a_pure_function_of_seed_device_stream_and_time():
    s = spec.from_profile(_profile(streams=[_stream()], anomalies={"rate": 0.3}))
    a = DeviceSensors(s, "dev-1", {}, seed=7)
    b = DeviceSensors(s, "dev-1", {}, seed=7)
    other_seed = DeviceSensors(s, "dev-1", {}, seed=8)
    times = [1_700_000_000 + 60 * i for i in range(200)]
    stream = s.streams[0]
    first = [a.read(stream, t) for t in times]
    assert first == [b.read(stream, t) for t in reversed(times)][::-1]
    assert first != [other_seed.read(stream, t) for t in times]


def test_daily_cycle_noise_and_range_follow_the_stream():
    s = spec.from_profile(
        _profile(
            streams=[
                _stream(
                    daily={"amplitude": 5, "peak_hour": 15}, noise=0.2, range={"min": 0, "max": 23}
                )
            ]
        )
    )
    sensors = DeviceSensors(s, "dev", {}, seed=1)
    stream = s.streams[0]
    day0 = 1_700_006_400 - 1_700_006_400 % DAY
    at_peak = [sensors.read(stream, day0 + 15 * 3600 + i) for i in range(300)]
    at_trough = [sensors.read(stream, day0 + 3 * 3600 + i) for i in range(300)]
    assert max(at_peak) == 23  # 25 clamped to the range
    assert statistics.mean(at_trough) == pytest.approx(15, abs=0.1)
    assert statistics.stdev(at_trough) == pytest.approx(0.2, rel=0.2)


def test_quirks_set_the_anomaly_rate_and_every_anomaly_is_reported_once():
    s = spec.from_profile(
        _profile(streams=[_stream()], anomalies={"rate": 0.05, "slot_s": 600, "types": SHORT_TYPES})
    )
    assert s.anomaly_rate({"firmware_version": "old"}) == 0.9
    assert s.anomaly_rate({"firmware_version": "new"}) == 0.05
    seen = []
    sensors = DeviceSensors(
        s, "dev", {"firmware_version": "old"}, seed=3, on_anomaly=lambda device, a: seen.append(a)
    )
    stream = s.streams[0]
    t0 = 1_700_000_400
    values = {t: sensors.read(stream, t) for t in range(t0, t0 + 20 * 600, 10)}
    assert 14 <= len(seen) <= 20  # 20 slots at 0.9
    assert len({(a.start, a.end) for a in seen}) == len(seen)
    for anomaly in seen:
        inside = [t for t in values if anomaly.covers(t)]
        assert inside, "reported only when a reading falls inside"
        if anomaly.type == "missing":
            assert all(values[t] is None for t in inside)
        if anomaly.type == "spike":
            assert min(values[t] for t in inside) > 20 + 4 * 0.5
    assert all(
        v is not None
        for t, v in values.items()
        if not any(a.covers(t) and a.type == "missing" for a in seen)
    )


def test_shipped_profiles_have_telemetry_and_their_quirk_rates_take_effect():
    for path in sorted((profiles_root() / "industries").glob("*.yaml")):
        telemetry = spec.from_profile(load_profile(path))
        assert telemetry is not None and telemetry.streams, path
    automotive = spec.from_profile(load_profile(profiles_root() / "industries/automotive.yaml"))
    assert automotive.anomaly_rate({"firmware_version": "3.9.2"}) == 0.05
    assert automotive.anomaly_rate({"firmware_version": "4.2.1"}) == automotive.rate


def test_anomaly_longer_than_its_slot_is_a_config_error():
    bad = _profile(
        streams=[_stream()],
        anomalies={
            "slot_s": 60,
            "types": {"drift": {"weight": 1, "duration_s": {"min": 10, "max": 120}}},
        },
    )
    with pytest.raises(ConfigError, match=r"anomalies.types.drift.duration_s: max 120 s"):
        spec.from_profile(bad)


def test_bad_telemetry_section_in_a_profile_file_names_file_and_key(tmp_path: Path):
    text = (profiles_root() / "industries/automotive.yaml").read_text()
    broken = tmp_path / "automotive.yaml"
    broken.write_text(text.replace("interval_s: 10}", "interval_s: -1}"))
    with pytest.raises(ConfigError) as err:
        load_profile(broken)
    assert "telemetry.streams[0].interval_s" in str(err.value)


def test_ground_truth_lines(tmp_path: Path):
    s = spec.from_profile(
        _profile(streams=[_stream()], anomalies={"rate": 1.0, "slot_s": 600, "types": SHORT_TYPES})
    )
    writer = TruthWriter(tmp_path / "run" / "anomalies.jsonl")
    sensors = DeviceSensors(
        s, "dev-9", {}, seed=5, on_anomaly=lambda d, a: writer.record(d, "t", a)
    )
    for t in range(1_700_000_400, 1_700_000_400 + 3 * 600, 5):
        sensors.read(s.streams[0], t)
    writer.close()
    lines = read_truth(tmp_path / "run" / "anomalies.jsonl")
    assert len(lines) == 3
    assert set(lines[0]) == {"device", "profile", "stream", "type", "start", "end"}
    assert all(line["device"] == "dev-9" and line["end"] > line["start"] for line in lines)


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_payload_round_trip(encoding):
    message = payload.Message("dev-1", "temp", "degC", 41, ((1.7e9, 20.5), (1.7e9 + 60, 21.0)))
    back = payload.decode(payload.encode(message, encoding))
    assert (back.device, back.stream, back.seq) == ("dev-1", "temp", 41)
    assert back.readings == message.readings
    if encoding == "binary":
        assert len(payload.encode(message, encoding)) < len(payload.encode(message, "json"))
    with pytest.raises(ValueError, match="not a telemetry message"):
        payload.decode(b"MS\x01\x05ab")


@pytest.mark.parametrize(
    "message",
    [
        payload.Message("dev-1", "temp", "degC", 41, ((1.7e9, 20.5), (1.7e9 + 60.0004, 21.00006))),
        payload.Message('dev-"ü"\\', "co2\n", "°C", 0, ((1e-7, -0.0), (3.0, 12345678901.5))),
        payload.Message("d", "s", "", 2**32 - 1, ()),
    ],
)
def test_json_payload_is_what_json_dumps_writes(message):
    """The hand-built JSON must stay byte for byte what the stdlib encoder would send."""
    import json

    expected = json.dumps(
        {
            "device": message.device,
            "stream": message.stream,
            "unit": message.unit,
            "seq": message.seq,
            "readings": [[round(ts, 3), round(v, 4)] for ts, v in message.readings],
        },
        separators=(",", ":"),
    ).encode()
    assert payload.encode(message, "json") == expected
    assert payload.decode(expected).device == message.device
