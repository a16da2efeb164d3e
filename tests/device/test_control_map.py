"""Update control maps on the device, as the Go client 3.5.3 reads and honours them: the map's
rules and texts, and the deployment paused, refreshed, aborted or failed by it (virtual clock)."""

from __future__ import annotations

import itertools
import json

import pytest
from device_fakes import STORAGE, Offer, artifact, profile, rig

from mendersim.device import steps
from mendersim.device.controlmap import ControlMap, ControlMapError, check_map
from mendersim.device.transport import Response, TransportError

DEPLOYMENT = "3f1c2a9e-5b7d-4e1f-9a2b-6c8d0e4f1a3b"
PAUSE = {"ArtifactInstall_Enter": {"action": "pause"}}


def _map(states: dict, deployment_id: str = DEPLOYMENT) -> dict:
    return {"id": deployment_id, "priority": 0, "states": states}


def test_defaults_are_filled_and_default_states_dropped():
    rules = check_map({"states": {**PAUSE, "ArtifactCommit_Enter": {}}})
    assert list(rules) == ["ArtifactInstall_Enter"]
    rule = rules["ArtifactInstall_Enter"]
    assert (rule.on_map_expire, rule.on_action_executed) == ("fail", "pause")
    forced = check_map({"states": {"ArtifactReboot_Enter": {"action": "force_continue"}}})
    assert forced["ArtifactReboot_Enter"].on_map_expire == "force_continue"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"states": {"Download_Enter": {}}}, 'invalid value "Download_Enter"'),
        ({"states": {"ArtifactInstall_Enter": {"action": "wait"}}}, 'invalid value "wait"'),
        (
            {"states": {"ArtifactInstall_Enter": {"on_map_expire": "pause"}}},
            'invalid value "pause"',
        ),
        ({"states": {}, "priority": 11}, "invalid Priority 11, value must be in the range"),
        ({"states": {}, "colour": "red"}, "Update Control Map contains unsupported fields"),
    ],
)
def test_maps_the_go_client_refuses_are_refused_with_its_text(given, message):
    with pytest.raises(ControlMapError, match=message):
        check_map(given)


def test_the_map_id_must_be_the_deployments():
    with pytest.raises(ControlMapError, match="ID must be a UUID"):
        ControlMap.parse(_map(PAUSE, "dep-1"), "dep-1", 0, 100)
    other = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    with pytest.raises(ControlMapError, match=f"Mismatched control map ID: {other}"):
        ControlMap.parse(_map(PAUSE, other), DEPLOYMENT, 0, 100)


def test_actions_become_on_action_executed_and_the_map_is_fetched_at_half_life():
    states = {
        "ArtifactInstall_Enter": {"action": "pause"},
        "ArtifactCommit_Enter": {"action": "force_continue", "on_action_executed": "fail"},
    }
    control = ControlMap.parse(_map(states), DEPLOYMENT, now=100, lifetime=60)
    assert control.refresh_at == 130
    assert [control.query("ArtifactInstall_Enter") for _ in range(2)] == ["pause", "pause"]
    assert control.query("ArtifactCommit_Enter") == "continue"
    assert control.query("ArtifactCommit_Enter") == "fail"
    assert control.query("ArtifactReboot_Enter") == "continue"


def _paused_rig(refreshes: list, **profile_sections):
    """A device offered DEPLOYMENT with a pause-before-install map; `refreshes` answer its GETs."""
    device, server, clock, _ = rig(profile(update_control_map=True, **profile_sections))
    server.v2 = True
    server.offer = Offer(DEPLOYMENT, "tcu-fw-5.0.0", artifact())
    offered = {
        "id": DEPLOYMENT,
        "artifact": {
            "artifact_name": "tcu-fw-5.0.0",
            "source": {"uri": STORAGE + DEPLOYMENT, "expire": "2030-01-01T00:00:00Z"},
            "device_types_compatible": ["tcu-imx8mm"],
        },
        "update_control_map": _map(PAUSE),
    }
    server.scripted[steps.NEXT] = [Response(200, json.dumps(offered).encode())]
    server.scripted[steps.CONTROL_MAP] = refreshes
    return device, server, clock


def _answer(states: dict) -> Response:
    return Response(200, json.dumps({"update_control_map": _map(states)}).encode())


def test_a_pause_is_reported_once_refreshed_each_poll_interval_and_a_404_aborts():
    device, server, clock = _paused_rig([_answer(PAUSE), _answer(PAUSE), _answer(PAUSE),
                                         Response(404, b"")])  # fmt: skip
    body = None

    def capture(exchange):
        nonlocal body
        if exchange.step == steps.NEXT and body is None:
            body = json.loads(exchange.body)
        if exchange.step == steps.CONTROL_MAP and len(server.scripted[steps.CONTROL_MAP]) == 1:
            server.offer = None  # the 404 comes: the server no longer has the deployment

    server.hook = capture
    clock.stop_at(20_000, device)
    device.run()
    assert body["update_control_map"] is True
    assert server.statuses() == ["downloading", "pause_before_installing"]
    fetches = [e.at for e in server.of(steps.CONTROL_MAP)]
    assert len(fetches) == 4
    assert [round(b - a) for a, b in itertools.pairwise(fetches[1:])] == [1800, 1800]
    assert device.state_update().history[0].result == "aborted"


def test_continue_after_a_pause_installs_and_reports_on():
    device, server, clock = _paused_rig([_answer(PAUSE), _answer({}), _answer({}), _answer({})])
    clock.stop_at(20_000, device)
    device.run()
    assert server.statuses() == [
        "downloading", "pause_before_installing", "installing", "rebooting", "installing",
        "success",
    ]  # fmt: skip


def test_refreshes_that_keep_failing_fail_the_deployment_after_the_retry_schedule():
    errors = [TransportError("connection_refused", "refused")] * 20
    device, server, clock = _paused_rig(errors)
    clock.stop_at(40_000, device)
    device.run()
    assert server.statuses() == ["downloading", "failure"]
    entry = device.state_update().history[0]
    assert entry.failure_reason == "control_map_unreachable"
    messages = [m["message"] for m in server.of("deployment log")[0].json()["messages"]]
    assert "Update control map check failed: refused, retrying..." in messages


def test_a_map_the_client_refuses_makes_the_answer_an_error():
    device, server, clock = _paused_rig([])
    offered = json.loads(server.scripted[steps.NEXT][0].body)
    offered["update_control_map"]["states"] = {"Download_Enter": {"action": "pause"}}
    server.scripted[steps.NEXT] = [Response(200, json.dumps(offered).encode())]
    server.offer = None
    clock.stop_at(3000, device)
    device.run()
    assert server.statuses() == []
    assert server.of(steps.CONTROL_MAP) == []


def test_the_switch_is_off_by_default_and_set_per_profile_or_command_line():
    from mendersim.device.behaviour import Behaviour
    from mendersim.device.traffic import parse_overrides

    assert not Behaviour.from_profile(profile()).traffic.update_control_map
    assert Behaviour.from_profile(profile(update_control_map=True)).traffic.update_control_map
    overrides = parse_overrides("update_control_map=on")
    assert Behaviour.from_profile(profile()).traffic.overridden(overrides).update_control_map


def test_a_pause_the_server_answers_with_409_aborts():
    device, server, clock = _paused_rig([_answer(PAUSE)] * 3)
    server.conflict_on.add("pause_before_installing")
    clock.stop_at(20_000, device)
    device.run()
    assert server.statuses() == ["downloading", "pause_before_installing"]
    assert device.state_update().history[0].result == "aborted"


def test_a_device_stopped_while_paused_leaves_no_history():
    device, server, clock = _paused_rig([_answer(PAUSE)] * 20)
    clock.stop_at(2_000, device)
    device.run()
    assert server.statuses() == ["downloading", "pause_before_installing"]
    assert device.state_update().history == []


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Response(200, b'{"other": 1}'), "No control map returned"),
        (Response(200, b"not json"), "Expecting value"),
        (Response(500, b""), "Invalid response received from the server"),
    ],
)
def test_an_answer_without_a_usable_map_is_retried_then_fails(answer, error):
    device, server, clock = _paused_rig([answer] * 20)
    clock.stop_at(40_000, device)
    device.run()
    assert server.statuses() == ["downloading", "failure"]
    assert device.state_update().history[0].failure_reason == "control_map_unreachable"
    messages = [m["message"] for m in server.of("deployment log")[0].json()["messages"]]
    assert any(
        m.startswith(f"Update control map check failed: {error}") and m.endswith("retrying...")
        for m in messages
    ), messages


def test_a_device_stopped_while_retrying_the_map_sends_nothing_more():
    errors = [TransportError("connection_refused", "refused")] * 20
    device, server, clock = _paused_rig(errors)
    clock.stop_at(200, device)
    device.run()
    assert server.statuses() == ["downloading"]
    assert device.state_update().history == []
    assert len(server.of(steps.CONTROL_MAP)) < 20


def test_a_map_that_says_fail_fails_the_deployment_before_the_install():
    failing_map = {"ArtifactInstall_Enter": {"action": "fail"}}
    device, server, clock = _paused_rig([_answer(failing_map)])
    clock.stop_at(20_000, device)
    device.run()
    assert server.statuses() == ["downloading", "failure"]
    assert device.state_update().history[0].failure_reason == "control_map_fail"
    messages = [m["message"] for m in server.of("deployment log")[0].json()["messages"]]
    assert "Update Control: Forced update failure in ArtifactInstall_Enter" in messages
