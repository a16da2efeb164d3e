"""Fixtures of the telemetry tests: a real Mosquitto per test module."""

from __future__ import annotations

import pytest
from mqtt_broker import running_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running
