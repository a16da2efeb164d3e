"""Status reports and log uploads that do not go through: what the device logs, retries, gives
up on, and the aborts the server answers at each phase (virtual clock, fake server)."""

from __future__ import annotations

from device_fakes import failing
from test_deployment import deploy, uploaded_log

from mendersim.device import failures
from mendersim.device.transport import Response, TransportError


def _messages(server, upload: int = -1) -> list[str]:
    return [m["message"] for m in server.of("deployment log")[upload].json()["messages"]]


def test_a_status_lost_on_the_link_is_logged_and_sent_again():
    def lossy(server):
        server.scripted["status:failure"] = [TransportError("connection_reset", "reset by peer")]

    device, server, _, _ = deploy(failing(failures.INSTALL_NO_SPACE), setup=lossy)
    assert server.statuses()[-2:] == ["failure", "failure"]
    assert "Could not send deployment status: reset by peer" in [
        m["message"] for m in uploaded_log(server)
    ]
    assert device.state_update().history[0].result == "failure"


def test_an_unexpected_answer_to_a_status_is_logged_and_sent_again():
    def refusing(server):
        server.scripted["status:failure"] = [Response(500, b'{"error":"internal"}')]

    _, server, _, _ = deploy(failing(failures.INSTALL_NO_SPACE), setup=refusing)
    assert server.statuses()[-2:] == ["failure", "failure"]
    assert "Could not send deployment status: HTTP 500" in _messages(server)


def test_a_log_upload_refused_repeats_status_and_log():
    def refusing(server):
        server.scripted["deployment log"] = [Response(500, b'{"error":"internal"}')]

    _, server, _, _ = deploy(failing(failures.INSTALL_NO_SPACE), setup=refusing)
    steps = [s for s in server.steps() if s in ("status:failure", "deployment log")]
    assert steps == ["status:failure", "deployment log"] * 2


def test_a_device_whose_status_never_gets_through_after_reboot_gives_up():
    def unreachable(server):
        # the report before the reboot goes through; every one after it is refused
        server.scripted["status:installing"] = [Response(204)] + [Response(503)] * 200

    device, server, _, _ = deploy(until=500_000, setup=unreachable)
    entry = device.state_update().history[0]
    assert (entry.result, entry.failure_reason) == ("failure", "status_report_failed")
    assert server.statuses()[-1] == "failure"
    assert "Giving up on sending status updates to server" in _messages(server)
    assert device.record.partition == "a"  # rolled back to the old partition


def test_a_device_stopped_while_waiting_to_resend_its_status_sends_nothing_more():
    def refusing(server):
        server.scripted["status:success"] = [Response(503)] * 50

    _device, server, clock, _ = deploy(until=400, setup=refusing)
    sent = server.of("status:success")
    assert 1 <= len(sent) < 50
    assert server.exchanges[-1].step == "status:success"  # nothing after the stop
    assert clock.now() >= 400


def test_an_abort_when_the_download_starts_downloads_nothing():
    device, server, _, _listener = deploy(setup=lambda s: s.conflict_on.add("downloading"))
    assert server.statuses() == ["downloading"]
    assert not server.of("download")
    assert device.state_update().history[0].result == "aborted"


def test_an_abort_at_the_reboot_keeps_the_old_partition():
    device, server, _, listener = deploy(setup=lambda s: s.conflict_on.add("rebooting"))
    assert server.statuses() == ["downloading", "installing", "rebooting"]
    assert device.state_update().history[0].result == "aborted"
    assert device.record.partition == "a" and device.record.artifact_name == "tcu-fw-4.2.1"
    assert [kind for kind, _ in listener.named("downtime")] == ["install"]


def test_an_intermediate_status_the_server_refuses_does_not_stop_the_update():
    def refusing(server):
        server.scripted["status:downloading"] = [Response(500, b'{"error":"internal"}')]

    device, server, _, _ = deploy(setup=refusing)
    assert server.statuses() == ["downloading", "installing", "rebooting", "installing", "success"]
    assert device.state_update().history[0].result == "success"
