"""mender-connect's link: when a device opens, closes and re-opens its deviceconnect websocket."""

from __future__ import annotations

import itertools

import pytest
from device_fakes import Offer, artifact, profile, rig

from mendersim.device.deviceconnect import CONNECT_PATH, reconnect_delay
from mendersim.device.transport import Response, TransportError

CONNECT = "deviceconnect connect"
HOUR = 3600.0


def _connects(server) -> list[float]:
    return [e.at for e in server.of(CONNECT)]


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_mender_connects_backoff_schedule():
    # expBackoff: none for the first attempt, then 1 s << (attempt / 3), capped, plus 0-5 s
    assert reconnect_delay(1, 0.9) == 0
    assert [reconnect_delay(n, 0.0) for n in range(2, 9)] == [1, 2, 2, 2, 4, 4, 4]
    assert reconnect_delay(4, 0.5) == 4.5
    assert reconnect_delay(33, 0.0) == 1800
    assert reconnect_delay(10_000, 0.999) == pytest.approx(1804.995)


def test_no_link_unless_the_profile_asks_for_it():
    device, server, clock, _ = rig(profile())
    clock.stop_at(2 * HOUR, device)
    device.run()
    assert CONNECT not in server.steps() and server.of("auth")


def test_the_link_opens_with_the_first_token_and_closes_when_the_device_stops():
    device, server, clock, _ = rig(profile(deviceconnect=True))
    clock.stop_at(3 * HOUR, device)
    device.run()
    (auth,) = server.of("auth")
    (exchange,) = server.of(CONNECT)
    (link,) = server.websockets
    assert exchange.url == CONNECT_PATH
    assert exchange.headers == {"Authorization": "Bearer jwt-1"}
    assert link.opened_at == auth.at and link.ping_every == 54.0
    assert not link.open and link.closed_at >= 3 * HOUR


def test_a_dropped_link_comes_back_with_the_backoff_and_the_first_retry_goes_at_once():
    device, server, clock, _ = rig(profile(deviceconnect=True), seed=3)

    def drop(refusals: int) -> None:
        failures = [TransportError("connection_refused")] * refusals
        server.scripted.setdefault(CONNECT, []).extend(failures)
        server.drop_websockets()

    clock.later(HOUR, lambda: drop(7))
    clock.later(5 * HOUR, lambda: drop(1))
    clock.stop_at(8 * HOUR, device)
    device.run()
    times = _connects(server)
    assert len(times) == 1 + 8 + 2
    first_storm, second_storm = times[1:9], times[9:]
    assert first_storm[0] == HOUR  # the first attempt after a success: no wait
    for gap, base in zip(_gaps(first_storm), [1, 2, 2, 2, 4, 4, 4], strict=True):
        assert base <= gap < base + 5
    assert len({round(g % 1, 6) for g in _gaps(first_storm)}) > 1  # jitter varies
    # a success resets the schedule
    assert second_storm[0] == 5 * HOUR and 1 <= second_storm[1] - second_storm[0] < 6
    assert [link.open for link in server.websockets] == [False, False, False]


def test_a_refused_upgrade_is_retried_with_the_backoff():
    device, server, clock, _ = rig(profile(deviceconnect=True), seed=8)
    server.scripted[CONNECT] = [Response(401, b'{"error":"unauthorized"}')] * 3
    clock.stop_at(HOUR, device)
    device.run()
    times = _connects(server)
    assert len(times) == 4 and len(server.websockets) == 1
    for gap, base in zip(_gaps(times), [1, 2, 2], strict=True):
        assert base <= gap < base + 5


def test_a_new_token_closes_the_link_and_opens_one_with_it():
    device, server, clock, _ = rig(profile(deviceconnect=True))
    clock.later(4000, server.revoke)  # the next poll is answered 401: the device authenticates
    clock.stop_at(3 * HOUR, device)
    device.run()
    auths = server.of("auth")
    assert len(auths) == 2
    old, new = server.websockets
    assert (old.token, new.token) == ("jwt-1", "jwt-2")
    assert old.closed_at == new.opened_at == auths[1].at
    assert new.open is False and len(server.of(CONNECT)) == 2


def test_a_reboot_closes_the_link_until_the_device_is_back_with_a_token():
    device, server, clock, _ = rig(profile(deviceconnect=True), seed=2)
    server.v2 = True
    server.offer = Offer("d-1", "tcu-fw-5.0.0", artifact())
    clock.stop_at(2 * HOUR, device)
    device.run()
    assert "success" in server.statuses()
    before, after = server.websockets
    rebooting = next(e.at for e in server.exchanges if e.step == "status:rebooting")
    reauth = server.of("auth")[1]
    assert rebooting <= before.closed_at < reauth.at
    assert reauth.at - before.closed_at >= 30  # the profile's shortest reboot
    assert after.token == "jwt-2" and after.opened_at == reauth.at


def test_on_a_link_with_outages_the_transport_watches_the_outage_and_connects_pay_the_rtt():
    device, server, clock, _ = rig(
        profile(deviceconnect=True, network={"profile": "intermittent"}), seed=4
    )
    clock.stop_at(HOUR, device)
    device.run()
    first = server.websockets[0]
    # the open link ends when an outage of this device's link begins
    assert first.link_down == device.transport.offline
    auth = server.of("auth")[0]
    assert first.opened_at > auth.at  # the upgrade pays the link's set-up round trips
