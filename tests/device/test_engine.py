"""Authentication, inventory and polling of a device against a scripted server."""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from device_fakes import Offer, artifact, make_record, profile, rig

from mendersim import CLIENT_VERSION
from mendersim.device.transport import Response, TransportError
from mendersim.fleet import keys
from mendersim.harness import wire


def run_until(device, clock, seconds):
    clock.stop_at(seconds, device)
    device.run()


@pytest.mark.parametrize("key_type", ["rsa2048", "ecdsa-p256", "ed25519"])
def test_auth_request_is_signed_over_the_exact_body(key_type):
    device, server, clock, _ = rig(record=make_record(key_type=key_type))
    run_until(device, clock, 1)
    auth = server.of("auth")[0]
    body = json.loads(auth.body)
    assert body["id_data"] == '{"mac":"02:00:00:00:00:01","vin":"WVWZZZ1JZXW000001"}'
    assert body["pubkey"] == device.record.public_key_pem
    assert body["tier"] == "standard"
    assert "tenant_token" not in body
    assert auth.headers["Content-Type"] == "application/json"
    public = keys.load_public(device.record.public_key_pem)
    signature = base64.b64decode(auth.headers["X-MEN-Signature"])
    assert keys.verify(public, signature, auth.body)
    assert not keys.verify(public, signature, auth.body + b" ")


def test_tenant_token_is_sent_when_configured():
    device, server, clock, _ = rig(tenant_token="tenant-abc")
    run_until(device, clock, 1)
    assert json.loads(server.of("auth")[0].body)["tenant_token"] == "tenant-abc"


def test_pending_device_retries_on_the_backoff_then_is_accepted():
    device, server, clock, listener = rig()
    server.refuse_auth = 4
    run_until(device, clock, 1000)
    attempts = [e.at for e in server.of("auth")]
    # Each cycle tries inventory and the poll; both need a token. Polls back off 60 s three
    # times, then 120 s, as the client's backoff does.
    polls_started = [e.at for e in server.of("deployments/next")]
    assert attempts[:2] == [0.0, 0.0]
    assert device.status == "accepted"
    assert listener.named("accepted") == [(attempts[4],)]
    assert polls_started[0] == attempts[4]
    assert server.tokens_issued == 1


def test_pending_status_is_kept_while_refused():
    device, server, clock, _ = rig()
    server.refuse_auth = 10**6
    run_until(device, clock, 3000)
    assert device.status == "pending"
    assert not server.of("deployments/next") and not server.of("inventory")


@pytest.mark.parametrize(("known", "seen"), [("accepted", "rejected"), ("new", "pending")])
def test_a_device_this_server_accepted_before_is_rejected_at_every_refusal(known, seen):
    record = make_record()
    record.status = known  # what the store says this server answered last
    device, server, clock, listener = rig(record=record)
    server.refuse_auth = 10**6
    run_until(device, clock, 3000)
    assert len(server.of("auth")) > 2 and device.status == seen
    # told once, so that the store hears of it at once, not again at every refusal after
    assert listener.named("status_changed") == [(seen,)]


def test_401_mid_run_reauthenticates_and_retries_once():
    device, server, clock, _ = rig()
    server.hook = lambda e: (
        server.revoke()
        if e.at == 1800 and e.step == "deployments/next" and len(server.of("deployments/next")) == 3
        else None
    )
    run_until(device, clock, 1900)
    steps = [(e.at, e.step) for e in server.exchanges if e.at == 1800]
    assert steps == [(1800, "deployments/next"), (1800, "auth"), (1800, "deployments/next")]
    assert server.tokens_issued == 2


def test_a_second_401_is_not_retried_again():
    device, server, clock, _ = rig()
    server.scripted["deployments/next"] = [Response(404), Response(401), Response(401)]
    run_until(device, clock, 10)
    at_start = [e.step for e in server.exchanges]
    assert at_start == [
        "auth",
        "inventory",
        "deployments/next",
        "deployments/next",
        "auth",
        "deployments/next",
    ]


def test_inventory_content_sorted_with_artifact_type_and_client_version():
    device, server, clock, _ = rig()
    run_until(device, clock, 1)
    items = server.of("inventory")[0].json()
    names = [item["name"] for item in items]
    assert names == sorted(names)
    values = {item["name"]: item["value"] for item in items}
    assert values["artifact_name"] == "tcu-fw-4.2.1"
    assert values["device_type"] == "tcu-imx8mm"
    assert values["mender_client_version"] == CLIENT_VERSION
    assert values["modem"] == "Quectel AG35"
    assert server.of("inventory")[0].method == "PUT"


def test_inventory_skipped_when_unchanged_and_resent_after_reauth():
    short = profile(intervals={"update_poll": 1800, "inventory_poll": 600, "retry_poll": 300})
    device, server, clock, _ = rig(short)
    revoked = []

    def revoke_once(exchange):
        if exchange.at >= 1500 and not revoked:
            revoked.append(exchange.at)
            server.revoke()

    server.hook = revoke_once
    run_until(device, clock, 2500)
    # Sent at 0; unchanged at 600, 1200 and 1800; the 401 on the 1800 s poll forced a
    # re-authentication, which clears the cache, so the 2400 s cycle sends again.
    assert [e.at for e in server.of("inventory")] == [0, 2400]
    assert server.tokens_issued == 2


def test_inventory_resent_after_a_deployment_with_the_new_artifact():
    device, server, clock, _ = rig()
    server.offer = Offer("dep-1", "tcu-fw-5.0.0", artifact())
    run_until(device, clock, 1000)
    sent = [
        {i["name"]: i["value"] for i in e.json()}["artifact_name"] for e in server.of("inventory")
    ]
    assert sent == ["tcu-fw-4.2.1", "tcu-fw-5.0.0"]
    assert server.steps().index("status:success") < len(server.steps()) - 1
    assert server.steps()[server.steps().index("status:success") + 1] == "inventory"


def test_v2_next_is_tried_first_and_v1_remembered_after_404():
    device, server, clock, _ = rig()
    run_until(device, clock, 4000)
    polls = server.of("deployments/next")
    assert [(p.method, p.at) for p in polls] == [
        ("POST", 0),
        ("GET", 0),
        ("GET", 1800),
        ("GET", 3600),
    ]
    v2 = polls[0].json()
    assert v2 == {
        "device_provides": {"artifact_name": "tcu-fw-4.2.1", "device_type": "tcu-imx8mm"},
        "update_control_map": False,
    }
    assert polls[1].url.endswith("?artifact_name=tcu-fw-4.2.1&device_type=tcu-imx8mm")


def test_v2_server_keeps_being_asked_with_post():
    device, server, clock, _ = rig()
    server.v2 = True
    run_until(device, clock, 2000)
    assert [p.method for p in server.of("deployments/next")] == ["POST", "POST"]


def test_failed_polls_back_off_like_the_client_then_fall_back_to_the_interval():
    device, server, clock, _ = rig()
    server.v2 = True
    server.scripted["deployments/next"] = [Response(500)] * 20
    run_until(device, clock, 5000)
    times = [e.at for e in server.of("deployments/next")]
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps[:13] == [60, 60, 60, 120, 120, 120, 240, 240, 240, 300, 300, 300, 1800]


def test_transport_errors_count_as_failed_polls():
    device, server, clock, _ = rig()
    server.v2 = True
    server.scripted["deployments/next"] = [TransportError("connection_refused")] * 2
    run_until(device, clock, 200)
    times = [e.at for e in server.of("deployments/next")]
    assert times == [0, 60, 120]


def test_successful_poll_resets_the_backoff():
    device, server, clock, _ = rig()
    server.v2 = True
    server.scripted["deployments/next"] = [Response(500)] * 4 + [Response(204), Response(500)]
    run_until(device, clock, 2500)
    times = [e.at for e in server.of("deployments/next")]
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps[:6] == [60, 60, 60, 120, 1800, 60]


def test_429_retry_after_overrides_the_backoff():
    device, server, clock, _ = rig()
    server.v2 = True
    server.scripted["deployments/next"] = [Response(429, headers={"retry-after": "17"})]
    run_until(device, clock, 100)
    assert [e.at for e in server.of("deployments/next")][:2] == [0, 17]


def test_time_scale_and_poll_interval_override_scale_every_timer():
    device, server, clock, _ = rig(time_scale=0.01, poll_interval=600)
    server.v2 = True
    server.scripted["deployments/next"] = [Response(204), Response(500), Response(500)]
    run_until(device, clock, 20)
    times = [round(e.at, 3) for e in server.of("deployments/next")]
    assert times[:4] == [0, 6, 6.6, 7.2]


def test_first_poll_is_spread_deterministically_over_the_start_spread():
    starts = []
    for n in range(40):
        device, server, clock, _ = rig(record=make_record(f"automotive-{n:06d}"), start_spread=1000)
        run_until(device, clock, 1001)
        starts.append(server.exchanges[0].at)
    assert all(0 <= s < 1000 for s in starts)
    assert len(set(starts)) == 40
    assert min(starts) < 250 and max(starts) > 750
    again, server, clock, _ = rig(record=make_record("automotive-000007"), start_spread=1000)
    run_until(again, clock, 1001)
    assert server.exchanges[0].at == starts[7]


def test_state_update_drains_history():
    device, server, clock, _ = rig()
    server.offer = Offer("dep-1", "tcu-fw-5.0.0", artifact())
    run_until(device, clock, 1000)
    first = device.state_update()
    assert [h.deployment_id for h in first.history] == ["dep-1"]
    assert first.artifact_name == "tcu-fw-5.0.0" and first.status == "accepted"
    assert device.state_update().history == []


@pytest.mark.parametrize("deployment", [False, True])
def test_unsent_is_what_the_store_has_not_taken_a_token_is_not(deployment):
    record = make_record()
    device, server, clock, _ = rig(record=record)
    assert not device.unsent()  # built from its record
    if deployment:
        server.offer = Offer("dep-1", "tcu-fw-5.0.0", artifact())
    run_until(device, clock, 1000)
    assert device.unsent() and device.status == "accepted" != record.status
    wire.apply_update(record, device.state_update())  # what the worker's flush does
    assert not device.unsent()  # accepted, with its token, and the store knows it
    assert record.artifact_name == ("tcu-fw-5.0.0" if deployment else "tcu-fw-4.2.1")


def test_429_retry_after_as_an_http_date():
    from email.utils import formatdate

    from device_fakes import START_WALL

    device, server, clock, _ = rig()
    server.v2 = True
    when = formatdate(START_WALL + 45, usegmt=True)
    server.scripted["deployments/next"] = [Response(429, headers={"retry-after": when})]
    run_until(device, clock, 100)
    assert [e.at for e in server.of("deployments/next")][:2] == [0, 45]


def test_phases_are_the_published_ones_and_deploying_follows_them():
    from mendersim.device.engine import PHASES

    device, server, clock, listener = rig()
    server.offer = Offer("dep-1", "tcu-fw-5.0.0", artifact())
    seen = []
    server.hook = lambda e: seen.append((device.phase, device.deploying))
    run_until(device, clock, 1000)
    assert {new for _, new in listener.named("phase_changed")} <= set(PHASES)
    assert ("downloading", True) in seen and ("polling", False) in seen
    assert device.phase == "idle" and not device.deploying
