"""Fault settings parsing and decisions, without a server: forms, schedules, determinism."""

from __future__ import annotations

import pytest

from mendersim.errors import ConfigError
from mendersim.server.faults import (
    FaultInjector,
    FaultSettings,
    Latency,
    parse_latency,
    parse_window,
)


def test_latency_forms():
    assert parse_latency("50ms", "x") == Latency("fixed", 0.05)
    assert parse_latency("normal:100ms,30ms", "x") == Latency("normal", 0.1, 0.03)
    assert parse_latency("uniform:10ms,200ms", "x") == Latency("uniform", 0.01, 0.2)
    assert parse_latency("exp:1s", "x") == Latency("exp", 1.0)
    for bad in ("normal:1ms", "gamma:1s,2s", "uniform:2s,1s", "fast"):
        with pytest.raises(ConfigError):
            parse_latency(bad, "--latency")


def test_maintenance_schedule_repeats():
    window = parse_window("10s+5s@60s", "x")
    assert window.remaining(9.9) == 0
    assert window.remaining(12) == pytest.approx(3)
    assert window.remaining(16) == 0
    assert window.remaining(71) == pytest.approx(4)
    with pytest.raises(ConfigError, match="EVERY must be longer"):
        parse_window("0s+5s@5s", "x")


def _run(settings, endpoint="next", count=200):
    injector = FaultInjector(settings, now=0.0)
    return [injector.decide(endpoint, now=i * 0.01) for i in range(count)]


def test_decisions_are_seeded_and_per_endpoint():
    settings = FaultSettings(
        latency="normal:20ms,5ms", error_rate=["next=0.3:503"], drop_rate=["next=0.1"], seed=11
    )
    first = _run(settings)
    assert first == _run(settings)
    assert first != _run(FaultSettings(**{**settings.to_json(), "seed": 12}))
    errors = sum(d.status == 503 for d in first)
    drops = sum(d.drop for d in first)
    assert 30 < errors < 90 and 5 < drops < 40
    assert all(d.delay >= 0 for d in first)
    assert {d.status for d in _run(settings, "inventory")} == {None}


def test_token_bucket_allows_the_rate():
    decisions = _run(FaultSettings(rate_limit=["status=10/s"]), "status", count=300)
    served = sum(d.status is None for d in decisions)
    assert 35 <= served <= 42  # 10 of burst + 10/s over 3 s
    assert all(d.retry_after >= 1 for d in decisions if d.status == 429)


def test_updated_merges_and_validates():
    settings = FaultSettings(latency="5ms")
    merged = settings.updated({"error_rate": ["all=0.1"]}, "PUT")
    assert merged.latency == "5ms" and merged.error_rate == ["all=0.1"]
    with pytest.raises(ConfigError, match="unknown field"):
        settings.updated({"latncy": "5ms"}, "PUT")
    with pytest.raises(ConfigError, match="seed"):
        settings.updated({"seed": "1"}, "PUT")
