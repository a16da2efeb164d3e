"""Process life: persistence across a restart, the status endpoint, bad command lines."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest
import requests
from server_testkit import SimDevice

from mendersim.server.process import free_port, running_server

pytestmark = pytest.mark.integration


def test_state_survives_a_restart(tmp_path, make_artifact, spec_check):
    db = tmp_path / "server.db"
    data = tmp_path / "data"
    artifact = make_artifact("persisted", "p-type")
    args = ("--db", str(db), "--acceptance", "manual")
    with running_server(*args, data_dir=data) as server:
        api = server.management()
        pending = SimDevice(server.url, spec_check)
        assert pending.authenticate().status_code == 401
        device = SimDevice(server.url, spec_check)
        device.authenticate()
        found = next(d for d in api.list_devices() if d["identity_data"] == device.identity)
        api.set_auth_status(found["id"], found["auth_sets"][0]["id"], "accepted")
        assert device.authenticate().status_code == 200
        device.put_inventory([{"name": "device_type", "value": "p-type"}])
        api.assign_group(found["id"], "canary")
        api.upload_artifact(artifact)
        deployment_id = api.create_deployment("keep", "persisted", group="canary")
        uri = device.next("old", "p-type").json()["artifact"]["source"]["uri"]
        assert device.status(deployment_id, "downloading").status_code == 204
    with running_server(*args, data_dir=data) as server:
        api = server.management()
        assert api.count_devices("accepted") == 1 and api.count_devices("pending") == 1
        inventory = api.device_inventory(found["id"])["attributes"]
        assert {"name": "device_type", "value": "p-type", "scope": "inventory"} in inventory
        assert {"name": "group", "value": "canary", "scope": "system"} in inventory
        assert [a["name"] for a in api.list_artifacts()] == ["persisted"]
        assert api.deployment_statistics(deployment_id)["downloading"] == 1
        # the old token and the old download link still work: their secrets were kept
        device.url = server.url
        assert device.status(deployment_id, "installing").status_code == 204
        port = server.url.rsplit(":", 1)[1]
        old_port = uri.split("/")[2].split(":")[1]
        assert requests.get(uri.replace(old_port, port)).content == artifact.read_bytes()
        assert device.status(deployment_id, "success").status_code == 204
        assert api.list_deployments()[0]["status"] == "finished"


def test_status_counts_devices_deployments_and_requests(server, make_device):
    device = make_device()
    device.authenticate()
    device.next("a", "t")
    requests.get(f"{server.url}/nowhere")
    headers = {"Authorization": f"Bearer {server.mgmt_token}"}
    status = requests.get(f"{server.url}/_mendersim/status", headers=headers).json()
    assert status["devices"]["accepted"] >= 1
    assert set(status) == {
        "devices",
        "deployments",
        "device_deployments",
        "requests",
        "deviceconnect",
    }
    assert status["deviceconnect"] == {"connected": 0, "connections": 0}
    requests_seen = status["requests"]
    assert requests_seen["POST /api/devices/v1/authentication/auth_requests"]["200"] >= 1
    assert requests_seen["GET /api/devices/v1/deployments/device/deployments/next"]["204"] >= 1
    assert requests_seen["GET <unmatched>"]["404"] == 1
    assert requests.get(f"{server.url}/_mendersim/status").status_code == 401
    device_id = device.device_id
    assert (
        requests.get(
            f"{server.url}/api/management/v2/devauth/devices/{device_id}", headers=headers
        ).json()["status"]
        == "accepted"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latency", "soon"], "--latency: 'soon' is not a duration"),
        (["--error-rate", "next=0.5:404"], "code must be 500 or 503"),
        (["--rate-limit", "next=fast"], "--rate-limit"),
        (["--maintenance", "10s"], "START+DURATION"),
        (["--download-rate", "-5"], "--download-rate"),
        (["--max-devices", "0"], "--max-devices"),
        (["--jwt-lifetime", "0s"], "--jwt-lifetime"),
        (["--acceptance", "sometimes"], "invalid choice"),
        (["--db", "/no/such/dir/x.db"], "--db"),
    ],
)
def test_bad_command_line_is_one_line_and_exit_2(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_reported(server):
    port = server.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_write_behind_survives_a_kill(tmp_path, spec_check, make_artifact):
    db = tmp_path / "server.db"
    with running_server("--db", str(db), "--db-flush-interval", "200ms") as server:
        device = SimDevice(server.url, spec_check)
        assert device.authenticate().status_code == 200
        server.management().upload_artifact(make_artifact("kept", "k-type"))
        time.sleep(1.0)
        server.process.kill()  # no shutdown flush: only the timer saved the device
        server.process.wait()
    with running_server("--db", str(db)) as server:
        assert server.management().count_devices("accepted") == 1
    # without --data-dir, artifact files live beside the database and outlive the process
    assert len(list((tmp_path / "server.db.data" / "artifacts").glob("*.mender"))) == 1


def test_a_finished_deployment_is_saved_before_it_is_answered(tmp_path, spec_check, make_artifact):
    db = tmp_path / "server.db"
    # A flush interval far beyond the test: only the durable path can save the statuses.
    args = ("--db", str(db), "--db-flush-interval", "1h")
    with running_server(*args) as server:
        api = server.management()
        device = SimDevice(server.url, spec_check)
        assert device.authenticate().status_code == 200
        device.put_inventory([{"name": "device_type", "value": "d-type"}])
        api.upload_artifact(make_artifact("durable", "d-type"))
        deployment_id = api.create_deployment("durable", "durable", devices=[device.device_id])
        assert device.next("old", "d-type").status_code == 200
        assert device.status(deployment_id, "downloading").status_code == 204
        assert device.status(deployment_id, "success").status_code == 204
        server.process.kill()  # right after the answer: no timer, no shutdown flush
        server.process.wait()
    with running_server(*args) as server:
        api = server.management()
        assert api.deployment_statistics(deployment_id)["success"] == 1
        # the device is not handed the deployment it finished
        device.url = server.url
        assert device.next("durable", "d-type").status_code == 204


def test_a_generated_management_token_is_kept_in_a_private_file_never_printed(tmp_path):
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k != "MENDERSIM_MGMT_TOKEN"}
    data = tmp_path / "data"
    command = [sys.executable, "-m", "mendersim.cli", "serve", "--port", port]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stderr.readline()
        token_file = data / "mgmt-token"
        assert line.strip().endswith(f"(management token in {token_file})"), line
        token = token_file.read_text().strip()
        assert len(token) >= 20 and token not in line
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        deadline = time.monotonic() + 30  # the line comes before the server listens
        while True:
            try:
                status = requests.get(
                    f"http://127.0.0.1:{port}/_mendersim/status",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server never listened"
                time.sleep(0.2)
        assert status.status_code == 200
    finally:
        process.terminate()
        _, rest = process.communicate(timeout=30)
    assert token not in rest
