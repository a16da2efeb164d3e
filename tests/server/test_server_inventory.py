"""Inventory: PUT replaces, PATCH upserts, scopes kept apart, 400 on malformed bodies."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _attributes(server, device, scope="inventory"):
    device_id = device.device_id
    view = server.management().device_inventory(device_id)
    return {a["name"]: a["value"] for a in view["attributes"] if a["scope"] == scope}


def test_put_replaces_and_patch_upserts(server, make_device):
    device = make_device()
    device.authenticate()
    first = [
        {"name": "device_type", "value": "sim"},
        {"name": "cpu_load", "value": 0.5},
        {"name": "ips", "value": ["10.0.0.1", "10.0.0.2"]},
    ]
    assert device.put_inventory(first).status_code == 200
    assert _attributes(server, device) == {
        "device_type": "sim",
        "cpu_load": 0.5,
        "ips": ["10.0.0.1", "10.0.0.2"],
    }
    assert device.put_inventory([{"name": "device_type", "value": "sim2"}]).status_code == 200
    assert _attributes(server, device) == {"device_type": "sim2"}
    patch = [{"name": "uptime", "value": 42}, {"name": "device_type", "value": "sim3"}]
    assert device.put_inventory(patch, "PATCH").status_code == 200
    assert _attributes(server, device) == {"device_type": "sim3", "uptime": 42}


def test_identity_and_system_attributes_stay_separate(server, make_device):
    device = make_device(identity={"mac": "02:00:00:00:00:01", "sn": "SN1"})
    device.authenticate()
    device.put_inventory([{"name": "mac", "value": "reported"}])
    assert _attributes(server, device, "identity") == {"mac": "02:00:00:00:00:01", "sn": "SN1"}
    assert _attributes(server, device) == {"mac": "reported"}
    assert _attributes(server, device, "system")["status"] == "accepted"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a", "value": 1},
        [{"value": 1}],
        [{"name": "", "value": 1}],
        [{"name": "a"}],
        [{"name": "a", "value": [1, "b"]}],
        [{"name": "a", "value": {"x": 1}}],
        [{"name": "a", "value": True}],
    ],
)
def test_malformed_inventory_gets_400(make_device, body):
    device = make_device()
    device.authenticate()
    for method in ("PUT", "PATCH"):
        response = device.put_inventory(body, method, valid=False)
        assert response.status_code == 400
        assert response.json()["error"]


def test_group_assignment_needs_an_existing_device_and_a_valid_name(server, make_device):
    api = server.management()
    with pytest.raises(Exception, match="HTTP 404"):
        api.assign_group("no-such-device", "canary")
    device = make_device()
    device.authenticate()
    device_id = device.device_id
    with pytest.raises(Exception, match="HTTP 400"):
        api.assign_group(device_id, "bad name!")
