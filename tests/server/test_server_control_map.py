"""Update control maps end to end: deployments created with a map (Mender's management shape),
a device honouring it as the Go client 3.5 does, paused then continued through Enterprise's
PATCH, and failed by the map. Exchanges the open-source spec covers are checked against it."""

from __future__ import annotations

import pytest
import requests
from test_server_traffic import PROFILE, _accepted_device, _wait_for

from mendersim.artifact.writer import write_artifact
from mendersim.device import steps

pytestmark = pytest.mark.integration

MAPPED = {
    **{k: v for k, v in PROFILE.items() if k != "inventory_churn"},
    "update_control_map": True,
    "update": {"success_rate": 1.0},
}
SCALE = 0.001  # the 1,800 s poll interval (and so the map's refresh) becomes 1.8 s
PAUSE_INSTALL = {"states": {"ArtifactInstall_Enter": {"action": "pause"}}}


def _deploy(server, tmp_path, device_id: str, name: str, control_map: dict | None, check=None):
    """Uploads an artifact and deploys it to the device: through the management client, or
    with `check` (the spec check) by a plain POST whose request and answer it validates."""
    path = tmp_path / f"{name}.mender"
    write_artifact(path, name=name, device_types=["edge-x86"], payload_size=20_000)
    management = server.management()
    management.upload_artifact(path)
    if check is None:
        return management.create_deployment(
            name, name, devices=[device_id], update_control_map=control_map
        )
    body = {"name": name, "artifact_name": name, "devices": [device_id],
            "update_control_map": control_map}  # fmt: skip
    created = _management(server, "POST", "", json=body)
    check(created)
    assert created.status_code == 201
    return created.headers["Location"].rsplit("/", 1)[1]


def _statuses(transport) -> list[str]:
    return [step.removeprefix("status:") for step, _ in transport.log if step.startswith("status:")]


def _management(server, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {server.mgmt_token}"}
    url = f"{server.url}/api/management/v1/deployments/deployments{path}"
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


def test_a_paused_deployment_waits_for_continue_then_succeeds(spec_check, tmp_path):
    with _accepted_device(MAPPED, SCALE, spec_check, v2="on") as (server, transport, found):
        management = server.management()
        deployment_id = _deploy(
            server, tmp_path, found["id"], "edge-os-1.13.0", PAUSE_INSTALL, spec_check
        )
        _wait_for(
            lambda: management.deployment_statistics(deployment_id)["pause_before_installing"],
            15,
            "the device to pause before installing",
        )
        fetched = transport.log.count((steps.CONTROL_MAP, 200))
        _wait_for(
            lambda: transport.log.count((steps.CONTROL_MAP, 200)) >= fetched + 2,
            15,
            "two refreshes of the map while paused",
        )
        assert "installing" not in _statuses(transport)
        view = _management(server, "GET", f"/{deployment_id}")
        spec_check(view)
        assert view.json()["update_control_map"] == {
            "id": deployment_id, "priority": 0, "states": PAUSE_INSTALL["states"],
        }  # fmt: skip
        went_on = {"states": {"ArtifactInstall_Enter": {"action": "continue"}}}
        management.set_control_map(deployment_id, went_on)
        _wait_for(lambda: management.deployment_statistics(deployment_id)["success"], 15, "success")
    assert _statuses(transport) == [
        "downloading", "pause_before_installing", "installing", "rebooting", "installing",
        "success",
    ]  # fmt: skip
    # A map is fetched before each of the three states and at every refresh while paused.
    assert transport.log.count((steps.CONTROL_MAP, 200)) >= fetched + 4


def test_a_map_that_fails_the_reboot_fails_the_deployment(spec_check, tmp_path):
    fail_reboot = {"states": {"ArtifactReboot_Enter": {"action": "fail"}}}
    with _accepted_device(MAPPED, SCALE, spec_check, v2="on") as (server, transport, found):
        management = server.management()
        deployment_id = _deploy(server, tmp_path, found["id"], "edge-os-1.14.0", fail_reboot)

        # The device reports the failure first and uploads its log after, as the C++ client does.
        def failed_with_log() -> list:
            return [d for d in management.deployment_devices(deployment_id, "failure") if d["log"]]

        _wait_for(failed_with_log, 15, "the failure's log")
        text = management.device_log(deployment_id, found["id"])
        plain_id = _deploy(server, tmp_path, found["id"], "edge-os-1.15.0", None)
        refused = _management(server, "PATCH", f"/{plain_id}", json={"update_control_map": {}})
        bad = _management(
            server, "POST", "", json={"name": "x", "artifact_name": "edge-os-1.15.0",
                                      "devices": [found["id"]],
                                      "update_control_map": {"states": {"Download_Enter": {}}}},
        )  # fmt: skip
        spec_check(bad)
    assert _statuses(transport)[:3] == ["downloading", "installing", "failure"]
    assert "Update Control: Forced update failure in ArtifactReboot_Enter" in text
    assert "Rolling back to the previous partition" in text
    assert refused.status_code == 409
    assert bad.status_code == 400 and 'invalid value \\"Download_Enter\\"' in bad.text


def test_without_the_switch_the_device_ignores_maps(spec_check, tmp_path):
    plain = {**MAPPED, "update_control_map": False}
    with _accepted_device(plain, SCALE, spec_check, v2="on") as (server, transport, found):
        management = server.management()
        deployment_id = _deploy(server, tmp_path, found["id"], "edge-os-1.13.0", PAUSE_INSTALL)
        _wait_for(lambda: management.deployment_statistics(deployment_id)["success"], 15, "success")
    assert "pause_before_installing" not in _statuses(transport)
    assert (steps.CONTROL_MAP, 200) not in transport.log
