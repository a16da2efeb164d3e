"""The update state machine: success, every failure mode, aborts, resumes, bad artifacts."""

from __future__ import annotations

import json

import pytest
from device_fakes import Offer, artifact, failing, make_record, profile, rig

from mendersim.device import failures

STATUS_PATH = "/api/devices/v1/deployments/device/deployments/dep-1/status"


def deploy(profile_dict=None, *, data=None, record=None, until=3000, setup=None, **config):
    device, server, clock, listener = rig(profile_dict, record=record, **config)
    server.offer = Offer("dep-1", "tcu-fw-5.0.0", data if data is not None else artifact())
    if setup:
        setup(server)
    clock.stop_at(until, device)
    device.run()
    return device, server, clock, listener


def uploaded_log(server):
    logs = server.of("deployment log")
    assert len(logs) == 1, server.steps()
    assert logs[0].url == "/api/devices/v1/deployments/device/deployments/dep-1/log"
    return logs[0].json()["messages"]


def test_successful_deployment_reports_in_order_and_flips_the_partition():
    device, server, _clock, listener = deploy()
    assert server.statuses() == ["downloading", "installing", "rebooting", "installing", "success"]
    assert all(
        e.url == STATUS_PATH and e.method == "PUT"
        for e in server.exchanges
        if e.step.startswith("status:")
    )
    steps = server.steps()
    rebooting = steps.index("status:rebooting")
    # The reboot drops the token: the first request after boot authenticates again.
    assert steps[rebooting + 1] == "auth"
    assert server.of("status:installing")[1].headers["Authorization"] == "Bearer jwt-2"
    reboot_gap = server.exchanges[rebooting + 1].at - server.exchanges[rebooting].at
    assert 30 <= reboot_gap <= 90
    assert device.record.partition == "b"
    assert device.record.artifact_name == "tcu-fw-5.0.0"
    assert device.record.provides["rootfs-image.version"] == "tcu-fw-5.0.0"
    (entry,) = device.state_update().history
    assert (entry.deployment_id, entry.result, entry.failure_reason) == ("dep-1", "success", None)
    assert entry.finished > entry.started
    assert not server.of("deployment log")
    downtimes = listener.named("downtime")
    assert [kind for kind, _ in downtimes] == ["install", "reboot"]
    assert 60 <= downtimes[0][1] <= 240
    ((nbytes, _),) = listener.named("download_finished")
    assert nbytes == len(server.offer.artifact if server.offer else artifact())
    ((record, seconds),) = listener.named("deployment_finished")
    assert record is entry and seconds == pytest.approx(sum(t for _, t in downtimes))
    phases = [new for _, new in listener.named("phase_changed")]
    for phase in ("downloading", "installing", "rebooting", "committing"):
        assert phase in phases


def test_no_requests_while_rebooting():
    _device, server, _clock, _ = deploy()
    steps = server.steps()
    rebooting = steps.index("status:rebooting")
    after = server.exchanges[rebooting + 1].at - server.exchanges[rebooting].at
    assert after >= 30


@pytest.mark.parametrize(
    ("mode", "statuses", "reboots", "expected_line"),
    [
        (
            failures.INSTALL_NO_SPACE,
            ["downloading", "installing", "failure"],
            0,
            "No space left on device",
        ),
        (
            failures.INSTALL_OUT_OF_MEMORY,
            ["downloading", "installing", "failure"],
            0,
            "Cannot allocate memory",
        ),
        (
            failures.REBOOT_KERNEL_PANIC,
            ["downloading", "installing", "rebooting", "failure"],
            2,
            "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        ),
        (
            failures.COMMIT_HEALTH_CHECK,
            ["downloading", "installing", "rebooting", "installing", "failure"],
            2,
            "health check failed",
        ),
    ],
)
def test_failures_after_download_roll_back_and_upload_the_log(
    mode, statuses, reboots, expected_line
):
    device, server, _, listener = deploy(failing(mode))
    assert server.statuses() == statuses
    messages = uploaded_log(server)
    text = [m["message"] for m in messages]
    assert any(expected_line in line for line in text), text
    assert "Rolling back to the previous partition" in text
    assert all(m["level"] in ("info", "error") for m in messages)
    assert all(m["timestamp"].endswith("Z") and "T" in m["timestamp"] for m in messages)
    assert text[0].startswith("Running mender-update ")
    assert device.record.partition == "a" and device.record.artifact_name == "tcu-fw-4.2.1"
    assert [k for k, _ in listener.named("downtime")].count("reboot") == reboots
    (entry,) = device.state_update().history
    assert (entry.result, entry.failure_reason) == ("failure", mode)
    # The status comes before the log, and inventory follows the deployment (unchanged here,
    # so the client's cache skips it).
    assert server.steps().index("status:failure") < server.steps().index("deployment log")


def test_download_connection_reset_retries_then_fails_without_rollback():
    device, server, _clock, listener = deploy(
        failing(failures.DOWNLOAD_CONNECTION_RESET), time_scale=0.1
    )
    assert server.statuses() == ["downloading", "failure"]
    text = [m["message"] for m in uploaded_log(server)]
    assert sum("Resuming download after 60 seconds" in line for line in text) == 10
    assert any("Connection reset by peer" in line for line in text)
    assert any("Giving up on resuming the download" in line for line in text)
    assert "Rolling back to the previous partition" not in text
    assert len(server.of("download")) == 1  # the link stayed down: no request got out
    ((nbytes, seconds),) = listener.named("download_finished")
    assert 0 < nbytes < len(artifact())
    assert seconds == pytest.approx(10 * 60 * 0.1)
    (entry,) = device.state_update().history
    assert entry.failure_reason == failures.DOWNLOAD_CONNECTION_RESET


def test_download_checksum_mismatch_fails_with_the_readers_error():
    device, server, _, _ = deploy(failing(failures.DOWNLOAD_CHECKSUM_MISMATCH))
    assert server.statuses() == ["downloading", "failure"]
    text = [m["message"] for m in uploaded_log(server)]
    assert any("does not match the expected checksum" in line for line in text), text
    (entry,) = device.state_update().history
    assert entry.failure_reason == failures.DOWNLOAD_CHECKSUM_MISMATCH


def test_tampered_artifact_fails_the_deployment():
    data = bytearray(artifact())
    data[len(data) // 2] ^= 0x40
    device, server, _, _ = deploy(data=bytes(data))
    assert server.statuses() == ["downloading", "failure"]
    text = [m["message"] for m in uploaded_log(server)]
    assert any("checksum" in line or "reader:" in line for line in text), text
    assert device.state_update().history[0].failure_reason.startswith("artifact_")
    assert device.record.artifact_name == "tcu-fw-4.2.1"


def test_wrong_device_type_fails_with_the_clients_message():
    device, server, _, _ = deploy(data=artifact(device_type="ivi-rcar-h3"))
    assert server.statuses() == ["downloading", "failure"]
    text = [m["message"] for m in uploaded_log(server)]
    assert any("device type" in line and "ivi-rcar-h3" in line for line in text), text
    assert device.state_update().history[0].failure_reason == "artifact_device_type"


def test_real_mender_artifact_installs_on_its_device_type(mender_tool_artifacts):
    data = (mender_tool_artifacts / "single-file.mender").read_bytes()
    record = make_record(device_type="qemux86-64")
    _device, server, _, _ = deploy(data=data, record=record)
    assert server.statuses()[-1] == "success"


def test_unsigned_artifact_is_refused_when_the_profile_has_a_verify_key():
    from mendersim.fleet import keys

    key = keys.generate("ecdsa-p256")
    signed_profile = profile(artifact_verify_key=keys.public_pem(key))
    _, server, _, _ = deploy(signed_profile)
    assert server.statuses() == ["downloading", "failure"]
    _, server, _, _ = deploy(signed_profile, data=artifact(sign_key=key))
    assert server.statuses()[-1] == "success"
    other = keys.generate("ecdsa-p256")
    _, server, _, _ = deploy(signed_profile, data=artifact(sign_key=other))
    text = [m["message"] for m in uploaded_log(server)]
    assert "Wrong manifest signature or wrong key" in text


def test_download_resumes_with_range_after_a_dropped_connection():
    data = artifact(size=300_000)
    _device, server, _clock, _ = deploy(
        data=data, setup=lambda s: s.drop_after.append(65536), time_scale=0.5
    )
    downloads = server.of("download")
    assert len(downloads) == 2
    assert "Range" not in downloads[0].headers
    assert downloads[1].headers["Range"] == f"bytes=65536-{len(data) - 1}"
    assert downloads[1].at - downloads[0].at == pytest.approx(30)  # one minute, scaled
    assert server.statuses()[-1] == "success"


def test_download_is_paced_to_the_profile_bandwidth():
    data = artifact(size=400_000)
    slow = profile(network={"profile": "none", "bandwidth_kbps": {"down": 80}})
    _, _server, _, listener = deploy(slow, data=data, until=10_000)
    ((nbytes, seconds),) = listener.named("download_finished")
    assert seconds == pytest.approx(nbytes * 8 / 80_000, rel=0.01)


def test_409_aborts_without_further_status():
    device, server, _, listener = deploy(setup=lambda s: s.conflict_on.add("installing"))
    assert server.statuses() == ["downloading", "installing"]
    (entry,) = device.state_update().history
    assert entry.result == "aborted"
    assert not server.of("deployment log")
    assert device.record.partition == "a"
    assert not listener.named("downtime")


def test_409_after_reboot_rolls_back_silently():
    def conflict_after_reboot(server):
        server.hook = lambda e: (
            server.conflict_on.add("installing") if e.step == "status:rebooting" else None
        )

    device, server, _, listener = deploy(setup=conflict_after_reboot)
    assert server.statuses() == ["downloading", "installing", "rebooting", "installing"]
    assert device.record.partition == "a" and device.record.artifact_name == "tcu-fw-4.2.1"
    assert [k for k, _ in listener.named("downtime")] == ["install", "reboot", "reboot"]
    assert device.state_update().history[0].result == "aborted"


def test_already_installed_artifact_is_reported_without_download():
    device, server, _, _ = deploy(setup=lambda s: setattr(s.offer, "artifact_name", "tcu-fw-4.2.1"))
    assert server.statuses() == ["already-installed"]
    assert not server.of("download")
    assert device.state_update().history[0].result == "already-installed"


def test_final_status_is_retried_on_server_errors():
    from mendersim.device.transport import Response

    def flaky(server):
        server.scripted["status:success"] = [Response(503), Response(503)]

    _, server, _, _ = deploy(setup=flaky)
    successes = server.of("status:success")
    assert len(successes) == 3
    assert successes[1].at - successes[0].at == 60
    assert json.loads(successes[2].body) == {"status": "success"}


def test_device_stopped_mid_deployment_leaves_no_history():
    device, server, _, _ = deploy(until=100)  # stops during the install
    assert device.state_update().history == []
    assert "status:success" not in server.steps()


def test_download_memory_stays_flat_whatever_the_artifact_size():
    import tracemalloc

    data = artifact(size=8_000_000, compression="none")
    device, server, clock, _ = rig()
    server.offer = Offer("dep-1", "tcu-fw-5.0.0", data)
    clock.stop_at(3000, device)
    tracemalloc.start()
    try:
        device.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert server.statuses()[-1] == "success"
    assert peak < 2_000_000, peak  # a few chunks, never the 8 MB artifact


def test_lost_log_upload_repeats_status_and_log_like_the_client():
    from mendersim.device.transport import TransportError

    def lossy(server):
        server.scripted["deployment log"] = [TransportError("connection_reset")]

    _, server, _, _ = deploy(failing(failures.INSTALL_NO_SPACE), setup=lossy)
    steps = [s for s in server.steps() if s in ("status:failure", "deployment log")]
    assert steps == ["status:failure", "deployment log"] * 2
    logs = server.of("deployment log")
    assert 60 <= logs[1].at - logs[0].at < 61  # the backoff, plus the link's round trips
    assert any("No space left on device" in m["message"] for m in logs[1].json()["messages"])


def test_zero_byte_payload_downloads_and_installs():
    _device, server, _, _ = deploy(data=artifact(size=0))
    assert server.statuses()[-1] == "success"


def test_augmented_artifact_downloads_then_fails_as_the_cpp_client(mender_tool_artifacts):
    data = (mender_tool_artifacts / "augmented.mender").read_bytes()
    device, server, _, _ = deploy(data=data, record=make_record(device_type="qemux86-64"))
    assert server.statuses() == ["downloading", "failure"]
    text = [m["message"] for m in uploaded_log(server)]
    assert "Got unexpected token Unrecognized expected 'Header' (manifest-augment)" in text, text
    assert device.state_update().history[0].failure_reason == "artifact_unsupported"
