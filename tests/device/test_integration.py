"""Devices with different key types through full deployments against the embedded server."""

from __future__ import annotations

import threading
import time

import pytest
from device_fakes import failing, make_record, profile
from device_http import RealClock, RequestsTransport

from mendersim.artifact.writer import write_artifact
from mendersim.device import failures
from mendersim.device.behaviour import Behaviour
from mendersim.device.engine import Device, EngineConfig
from mendersim.device.events import DeviceListener
from mendersim.fleet.model import compact_json
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

KEY_TYPES = ["rsa2048", "ecdsa-p256", "ed25519"]


class Finished(DeviceListener):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.records = {}

    def deployment_finished(self, device, record, seconds) -> None:
        self.records[device.record.device_id] = record
        if len(self.records) == len(KEY_TYPES):
            self.done.set()


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("v2", ["on", "off"])
def test_devices_deploy_against_the_embedded_server(tmp_path, v2):
    succeed = Behaviour.from_profile(profile())
    fail = Behaviour.from_profile(failing(failures.INSTALL_NO_SPACE))
    listener = Finished()
    config = EngineConfig(time_scale=0.002, seed=3, start_spread=0)
    clock = RealClock()
    with running_server("--acceptance", "auto", "--v2-next", v2) as server:
        devices = []
        for n, key_type in enumerate(KEY_TYPES):
            record = make_record(f"automotive-{n:06d}", key_type=key_type)
            identity = {"vin": f"WVWZZZ1JZXW00000{n}", "mac": f"02:00:00:00:00:0{n}"}
            record.id_data_text = compact_json(identity)
            behaviour = fail if key_type == "ecdsa-p256" else succeed
            devices.append(
                Device(
                    record,
                    behaviour,
                    RequestsTransport(server.url),
                    clock,
                    config=config,
                    listener=listener,
                )
            )
        threads = [threading.Thread(target=d.run, daemon=True) for d in devices]
        for thread in threads:
            thread.start()
        try:
            management = server.management()
            accepted = _wait_for(
                lambda: (
                    (found := management.list_devices(status="accepted"))
                    and len(found) == len(KEY_TYPES)
                    and found
                ),
                30,
                "three accepted devices",
            )
            by_vin = {d["identity_data"]["vin"]: d["id"] for d in accepted}
            path = tmp_path / "update.mender"
            write_artifact(
                path, name="tcu-fw-5.0.0", device_types=["tcu-imx8mm"], payload_size=150_000, seed=1
            )
            management.upload_artifact(path)
            deployment = management.create_deployment(
                "rollout", "tcu-fw-5.0.0", devices=sorted(by_vin.values())
            )
            assert listener.done.wait(45), listener.records
        finally:
            for device in devices:
                device.stop()
            for thread in threads:
                thread.join(10)

        results = {d.record.key_type: listener.records[d.record.device_id].result for d in devices}
        assert results == {"rsa2048": "success", "ecdsa-p256": "failure", "ed25519": "success"}
        stats = management.deployment_statistics(deployment)
        assert stats["success"] == 2 and stats["failure"] == 1
        failed_id = by_vin["WVWZZZ1JZXW000001"]
        log = management.device_log(deployment, failed_id)
        assert "No space left on device" in log
        ok_id = by_vin["WVWZZZ1JZXW000000"]
        inventory = _wait_for(
            lambda: (
                (inv := management.device_inventory(ok_id)) and "tcu-fw-5.0.0" in str(inv) and inv
            ),
            10,
            "inventory with the new artifact",
        )
        assert "mender_client_version" in str(inventory)
        assert devices[0].record.partition == "b" and devices[1].record.partition == "a"
        # Against a server without v2 next the device falls back once and stays on v1.
        answers = [code for step, code in devices[0].transport.log if step == "deployments/next"]
        assert answers.count(404) == (1 if v2 == "off" else 0)
