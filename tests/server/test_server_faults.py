"""Faults: latency, error rates, 429s, dropped connections, maintenance windows; set on the
command line or at run time through /_mendersim/faults, decided by a seeded RNG."""

from __future__ import annotations

import time

import pytest
import requests
from server_testkit import SimDevice

from mendersim.server.process import running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faulty(spec_check):
    """A server and one authenticated device (faults are set per test at run time)."""
    with running_server() as server:
        device = SimDevice(server.url, None)
        assert device.authenticate().status_code == 200
        yield server, device
        _set(server, _CLEAR)


_CLEAR = {
    "latency": None,
    "error_rate": [],
    "rate_limit": [],
    "drop_rate": [],
    "maintenance": [],
    "seed": 0,
}


def _set(server, faults):
    response = requests.put(
        f"{server.url}/_mendersim/faults",
        json={**_CLEAR, **faults},
        headers={"Authorization": f"Bearer {server.mgmt_token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _codes(device, count):
    return [device.next("a", "t").status_code for _ in range(count)]


def test_fixed_latency(faulty):
    server, device = faulty
    _set(server, {"latency": "150ms"})
    started = time.monotonic()
    assert _codes(device, 3) == [204] * 3
    assert time.monotonic() - started >= 0.45
    _set(server, {})
    started = time.monotonic()
    _codes(device, 3)
    assert time.monotonic() - started < 0.45


def test_error_rate_is_per_endpoint_and_seeded(faulty):
    server, device = faulty
    _set(server, {"error_rate": ["next=1:503"]})
    response = device.next("a", "t")
    assert response.status_code == 503 and response.json()["error"]
    assert device.put_inventory([{"name": "a", "value": "b"}]).status_code == 200
    _set(server, {"error_rate": ["next=0.5"], "seed": 7})
    first = _codes(device, 40)
    _set(server, {"error_rate": ["next=0.5"], "seed": 7})
    assert _codes(device, 40) == first  # same seed, same decisions
    assert 5 < first.count(500) < 35 and set(first) == {204, 500}


def test_rate_limit_share_and_token_bucket(faulty):
    server, device = faulty
    _set(server, {"rate_limit": ["next=1:30"]})
    response = device.next("a", "t")
    assert response.status_code == 429 and response.headers["Retry-After"] == "30"
    _set(server, {"rate_limit": ["all=2/s"]})
    codes = _codes(device, 12)
    assert codes[:2] == [204] * 2 and 429 in codes[2:]
    limited = device.next("a", "t")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_dropped_connection(faulty):
    server, device = faulty
    _set(server, {"drop_rate": ["next=1"]})
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{server.url}/api/devices/v1/deployments/device/deployments/next",
            params={"artifact_name": "a", "device_type": "t"},
            headers=device.headers(),
            timeout=5,
        )
    _set(server, {})
    assert device.next("a", "t").status_code == 204
    status = requests.get(
        f"{server.url}/_mendersim/status",
        headers={"Authorization": f"Bearer {server.mgmt_token}"},
    ).json()
    assert (
        status["requests"]["GET /api/devices/v1/deployments/device/deployments/next"]["dropped"]
        == 1
    )


def test_maintenance_window(faulty):
    server, device = faulty
    _set(server, {"maintenance": ["0s+2500ms"]})
    during = device.next("a", "t")
    assert during.status_code == 503 and int(during.headers["Retry-After"]) in (1, 2, 3)
    assert device.authenticate().status_code == 503
    time.sleep(2.6)
    assert device.authenticate().status_code == 200
    assert device.next("a", "t").status_code == 204


def test_bad_fault_settings_are_refused_and_kept(faulty):
    server, _ = faulty
    _set(server, {"latency": "20ms"})
    headers = {"Authorization": f"Bearer {server.mgmt_token}"}
    for body in ({"latency": "soon"}, {"error_rate": ["next=2"]}, {"nope": 1}, [1]):
        response = requests.put(f"{server.url}/_mendersim/faults", json=body, headers=headers)
        assert response.status_code == 400 and response.json()["error"]
    current = requests.get(f"{server.url}/_mendersim/faults", headers=headers).json()
    assert current["latency"] == "20ms"
    assert requests.get(f"{server.url}/_mendersim/faults").status_code == 401


def test_faults_from_the_command_line(spec_check):
    args = ("--error-rate", "auth=1:503", "--latency", "uniform:1ms,5ms", "--fault-seed", "3")
    with running_server(*args) as server:
        device = SimDevice(server.url, None)
        assert device.authenticate().status_code == 503
        faults = requests.get(
            f"{server.url}/_mendersim/faults",
            headers={"Authorization": f"Bearer {server.mgmt_token}"},
        ).json()
        assert faults["error_rate"] == ["auth=1:503"] and faults["seed"] == 3
