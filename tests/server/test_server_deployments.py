"""Deployments end to end: instructions, status reports, server rules, abort, statistics,
groups, all devices, logs, v1 POST and v2 next."""

from __future__ import annotations

import pytest
import requests
from server_testkit import DEPLOYMENTS, NEXT_V2, SimDevice

from mendersim.mender_api.management import MenderApiError
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

TYPE = "sim-device"
OLD = "release-1"


@pytest.fixture(scope="module")
def release(server, make_artifact):
    """Artifacts named release-2 for TYPE; release-3 for another device type only."""
    api = server.management()
    api.upload_artifact(make_artifact("release-2", TYPE))
    api.upload_artifact(make_artifact("release-3", "other-type"))
    return "release-2"


@pytest.fixture
def fleet(make_device):
    def make(count):
        devices = [make_device() for _ in range(count)]
        for device in devices:
            assert device.authenticate().status_code == 200
        return devices

    return make


def test_full_deployment_reaches_finished_with_statistics(server, release, fleet):
    api = server.management()
    devices = fleet(2)
    deployment_id = api.create_deployment("d1", release, devices=[d.device_id for d in devices])
    stats = api.deployment_statistics(deployment_id)
    assert stats["pending"] == 2 and set(stats) >= {"success", "failure", "noartifact"}
    for index, device in enumerate(devices):
        answer = device.next(OLD, TYPE)
        assert answer.status_code == 200
        instructions = answer.json()
        assert instructions["id"] == deployment_id
        assert instructions["artifact"]["artifact_name"] == release
        assert instructions["artifact"]["device_types_compatible"] == [TYPE]
        assert requests.get(instructions["artifact"]["source"]["uri"]).status_code == 200
        for status in ("downloading", "installing", "rebooting"):
            assert device.status(deployment_id, status).status_code == 204
        final = "success" if index == 0 else "failure"
        assert device.status(deployment_id, final).status_code == 204
    stats = api.deployment_statistics(deployment_id)
    assert (stats["success"], stats["failure"], stats["pending"]) == (1, 1, 0)
    listed = {d["id"]: d for d in api.list_deployments()}
    assert listed[deployment_id]["status"] == "finished"
    assert listed[deployment_id]["device_count"] == 2
    # finished: a repeated final status is taken and changes nothing (the client repeats it when
    # its log upload is retried); any other report conflicts; polls have nothing
    assert devices[1].status(deployment_id, "failure").status_code == 204
    assert api.deployment_statistics(deployment_id) == stats
    assert devices[0].status(deployment_id, "installing").status_code == 409
    assert devices[0].next(release, TYPE).status_code == 204


def test_already_installed_and_noartifact_answer_204(server, release, fleet):
    api = server.management()
    installed, foreign = fleet(2)
    deployment_id = api.create_deployment(
        "d2", release, devices=[installed.device_id, foreign.device_id]
    )
    assert installed.next(release, TYPE).status_code == 204
    assert foreign.next(OLD, "unknown-type").status_code == 204
    stats = api.deployment_statistics(deployment_id)
    assert stats["already-installed"] == 1 and stats["noartifact"] == 1
    assert {d["id"]: d for d in api.list_deployments()}[deployment_id]["status"] == "finished"


def test_conflicting_data_mid_deployment_fails_the_device_with_409(server, release, fleet):
    api = server.management()
    (device,) = fleet(1)
    deployment_id = api.create_deployment("d3", release, devices=[device.device_id])
    assert device.next(OLD, TYPE).status_code == 200
    assert device.status(deployment_id, "downloading").status_code == 204
    assert device.next(OLD, TYPE).status_code == 200  # same data: same instructions
    assert device.next("something-else", TYPE).status_code == 409
    assert api.deployment_statistics(deployment_id)["failure"] == 1


def test_abort_makes_status_reports_conflict(server, release, fleet):
    api = server.management()
    started, idle = fleet(2)
    deployment_id = api.create_deployment(
        "d4", release, devices=[started.device_id, idle.device_id]
    )
    assert started.next(OLD, TYPE).status_code == 200
    assert started.status(deployment_id, "downloading").status_code == 204
    api.abort_deployment(deployment_id)
    assert started.status(deployment_id, "installing").status_code == 409
    assert idle.next(OLD, TYPE).status_code == 204
    assert api.deployment_statistics(deployment_id)["aborted"] == 2
    with pytest.raises(MenderApiError, match="HTTP 422"):
        api.abort_deployment(deployment_id)


def test_group_and_all_devices_deployments(server, release, fleet):
    api = server.management()
    canary, other = fleet(2)
    api.assign_group(canary.device_id, "canary")
    group_id = api.create_deployment("d5", release, group="canary")
    assert canary.next(OLD, TYPE).json()["id"] == group_id
    assert other.next(OLD, TYPE).status_code == 204
    assert canary.status(group_id, "success").status_code == 204
    all_id = api.create_deployment("d6", release, all_devices=True)
    assert other.next(OLD, TYPE).json()["id"] == all_id
    stats = api.deployment_statistics(all_id)
    assert stats["pending"] == sum(stats.values()) == api.count_devices("accepted")
    api.abort_deployment(all_id)
    with pytest.raises(MenderApiError, match="HTTP 400"):
        api.create_deployment("d7", release, group="empty-group")


def test_log_upload_is_readable_by_management(server, release, fleet):
    api = server.management()
    (device,) = fleet(1)
    deployment_id = api.create_deployment("d8", release, devices=[device.device_id])
    device.next(OLD, TYPE)
    device.status(deployment_id, "failure")
    messages = [
        {"timestamp": "2026-11-22T10:00:00Z", "level": "ERROR", "message": "install failed"},
        {"timestamp": "2026-11-22T10:00:01Z", "level": "INFO", "message": "rolled back"},
    ]
    assert device.log(deployment_id, messages).status_code == 204
    text = api.device_log(deployment_id, device.device_id)
    assert "ERROR install failed" in text and "INFO rolled back" in text
    assert device.log(deployment_id, [{"level": "x"}], valid=False).status_code == 400
    assert device.log("no-such-deployment", messages).status_code == 404
    # "List Devices in Deployment": who failed, and whether a log is there to read
    (failed,) = api.deployment_devices(deployment_id, "failure")
    assert failed["id"] == device.device_id and failed["log"] is True
    assert [d["id"] for d in api.deployment_devices(deployment_id, "finished")] == [failed["id"]]
    assert api.deployment_devices(deployment_id, "success") == []
    assert api.deployment_devices(deployment_id, "active") == []
    with pytest.raises(MenderApiError, match="HTTP 400"):
        api.deployment_devices(deployment_id, "bogus")
    with pytest.raises(MenderApiError, match="HTTP 404"):
        api.deployment_devices("no-such-deployment")


def test_bad_requests_and_unknown_artifact(server, release, fleet):
    api = server.management()
    (device,) = fleet(1)
    with pytest.raises(MenderApiError, match="HTTP 422"):
        api.create_deployment("d9", "no-such-release", devices=[device.device_id])
    assert device.next("", TYPE, valid=False).status_code == 400
    deployment_id = api.create_deployment("d10", release, devices=[device.device_id])
    assert device.status(deployment_id, "bogus", valid=False).status_code == 400
    assert device.status("no-such-deployment", "installing").status_code == 404
    api.abort_deployment(deployment_id)


def test_v1_post_and_v2_next(server, release, fleet, spec_check):
    api = server.management()
    (device,) = fleet(1)
    deployment_id = api.create_deployment("d11", release, devices=[device.device_id])
    url = server.url
    v1 = requests.post(
        f"{url}{DEPLOYMENTS}/next",
        json={"artifact_name": OLD, "device_type": TYPE},
        headers=device.headers(),
    )
    assert v1.status_code == 200 and v1.json()["id"] == deployment_id
    body = {"device_provides": {"artifact_name": OLD, "device_type": TYPE}}
    v2 = requests.post(url + NEXT_V2, json=body, headers=device.headers())
    assert v2.status_code == 200 and v2.json()["id"] == deployment_id
    bad = requests.post(url + NEXT_V2, json={"device_provides": {}}, headers=device.headers())
    assert bad.status_code == 400
    api.abort_deployment(deployment_id)
    with running_server("--v2-next", "off") as oss:
        other = SimDevice(oss.url, spec_check)
        other.authenticate()
        assert (
            requests.post(oss.url + NEXT_V2, json=body, headers=other.headers()).status_code == 404
        )


def test_management_answers_match_the_spec(server, release, fleet, spec_check):
    api = server.management()
    (device,) = fleet(1)
    deployment_id = api.create_deployment("d12", release, devices=[device.device_id])
    headers = {"Authorization": f"Bearer {server.mgmt_token}"}
    base = f"{server.url}/api/management"
    for path in (
        f"/v1/deployments/deployments/{deployment_id}/statistics",
        f"/v1/deployments/deployments/{deployment_id}",
        "/v1/deployments/deployments?per_page=5",
        "/v1/deployments/artifacts",
        "/v2/devauth/devices?status=accepted&per_page=3",
        "/v2/devauth/devices/count?status=accepted",
        f"/v2/devauth/devices/{device.device_id}",
        f"/v1/inventory/devices/{device.device_id}",
    ):
        response = requests.get(base + path, headers=headers)
        assert response.status_code == 200, path
        spec_check(response)
    api.abort_deployment(deployment_id)
