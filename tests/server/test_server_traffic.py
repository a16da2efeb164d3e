"""A device's wider traffic end to end against the embedded server, every exchange checked
against Mender's OpenAPI spec: the tier in the auth request and inventory churn reaching the
inventory service."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from device_http import RealClock, RequestsTransport
from server_testkit import SpecCheck

from mendersim.device.behaviour import Behaviour
from mendersim.device.engine import Device, EngineConfig
from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord, compact_json
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration


def _checked(check: SpecCheck):
    """The spec check for every exchange but v2 next, which the open-source spec lacks."""

    def checked(answer: requests.Response) -> None:
        if "/api/devices/v2/" not in answer.url:
            check(answer)

    return checked


def _record() -> DeviceRecord:
    key = keys.generate("ed25519")
    return DeviceRecord(
        device_id="industrial-000001",
        profile="industrial",
        key_type="ed25519",
        id_data_text=compact_json({"serial": "ACME-TRAFFIC-1"}),
        private_key_pem=keys.private_pem(key),
        device_type="edge-x86",
        artifact_name="edge-os-1.12.0",
        inventory_text=compact_json({"firmware_version": "1.12.0"}),
    )


PROFILE = {
    "name": "industrial",
    "tier": "micro",
    "intervals": {"update_poll": 1800, "inventory_poll": 28800, "retry_poll": 300},
    "network": {"profile": "none"},
    "inventory_churn": [
        {"attribute": "uptime_s", "kind": "uptime"},
        {"attribute": "storage_free_kb", "kind": "walk", "start": 5000, "step": 400},
    ],
}


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def _accepted_device(
    profile: dict, time_scale: float, spec_check: SpecCheck, v2: str = "off"
) -> Iterator[tuple]:
    """One device running on a thread against a fresh server, once the server has accepted it."""
    with running_server("--acceptance", "auto", "--v2-next", v2) as server:
        transport = RequestsTransport(server.url, _checked(spec_check))
        config = EngineConfig(time_scale=time_scale, seed=2, start_spread=0)
        behaviour = Behaviour.from_profile(profile)
        device = Device(_record(), behaviour, transport, RealClock(), config=config)
        thread = threading.Thread(target=device.run, daemon=True)
        thread.start()
        try:
            management = server.management()
            (found,) = _wait_for(
                lambda: management.list_devices(status="accepted"), 15, "the accepted device"
            )
            yield server, transport, found
        finally:
            device.stop()
            thread.join(10)


def test_churned_inventory_reaches_the_server_and_every_exchange_is_valid(spec_check):
    # 28,800 s of inventory interval become 2.9 s.
    with _accepted_device(PROFILE, 0.0001, spec_check) as (server, transport, found):
        management = server.management()

        def reported() -> dict:
            attributes = management.device_inventory(found["id"])["attributes"]
            return {a["name"]: a["value"] for a in attributes if a["scope"] == "inventory"}

        first = _wait_for(lambda: (r := reported()).get("uptime_s") is not None and r, 10, "")
        later = _wait_for(
            lambda: (r := reported())["uptime_s"] > first["uptime_s"] and r, 15, "a new PUT"
        )
    assert later["storage_free_kb"] != first["storage_free_kb"]
    assert later["firmware_version"] == "1.12.0"
    steps = [step for step, _ in transport.log]
    assert steps.count("inventory") == 1 and steps.count("inventory:churn") >= 1
    assert all(code == 200 for step, code in transport.log if step.startswith("inventory"))


def test_configuration_set_by_management_is_applied_and_reported_back(spec_check):
    profile = {**PROFILE, "deviceconfig": True}
    profile.pop("inventory_churn")
    # 28,800 s of inventory interval become 1.4 s: the add-on reports at that interval.
    with _accepted_device(profile, 0.00005, spec_check) as (server, transport, found):
        management = server.management()
        _wait_for(
            lambda: management.device_configuration(found["id"]).get("reported_ts"),
            10,
            "the first (empty) report",
        )
        wanted = {"timezone": "Europe/Oslo", "log_level": "debug"}
        management.set_configuration(found["id"], wanted)
        view = _wait_for(
            lambda: (v := management.device_configuration(found["id"]))["reported"] == wanted and v,
            10,
            "the new configuration reported back",
        )
        cycles_before = transport.log.count(("deviceconfig", 200))
        _wait_for(
            lambda: transport.log.count(("deviceconfig", 200)) >= cycles_before + 2,
            10,
            "two more fetches",
        )
        path = f"{server.url}/api/management/v1/deviceconfig/configurations/device"
        auth = {"Authorization": f"Bearer {server.mgmt_token}"}
        spec_check(requests.get(f"{path}/{found['id']}", headers=auth, timeout=10))
        refused = requests.put(f"{path}/{found['id']}", json={"a": 1}, headers=auth, timeout=10)
        spec_check(refused, valid_request=False)
        unknown = requests.get(
            f"{path}/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=auth, timeout=10
        )
        spec_check(unknown)
        early = requests.put(
            f"{path}/{'1' * 8}-0000-0000-0000-{'0' * 12}", json={}, headers=auth, timeout=10
        )
        spec_check(early)
    assert refused.status_code == 400 and "'a': value must be a string" in refused.json()["error"]
    assert unknown.status_code == 404
    assert early.status_code == 204  # set before the device exists, as Mender allows
    assert view["configured"] == wanted and view["id"] == found["id"]
    reports = [code for step, code in transport.log if step == "deviceconfig:report"]
    # One report of the empty start, one of the change; unchanged fetches report nothing.
    assert reports == [204, 204]


def test_configuration_traffic_is_off_unless_switched_on():
    behaviour = Behaviour.from_profile(PROFILE)
    assert not behaviour.traffic.deviceconfig
    assert behaviour.traffic.overridden((("deviceconfig", "on"),)).deviceconfig
