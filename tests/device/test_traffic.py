"""Tier and inventory churn: what the device sends, how often, and that it is reproducible."""

from __future__ import annotations

import json

import pytest
from device_fakes import profile, rig

from mendersim.device.traffic import parse_overrides
from mendersim.errors import ConfigError

DAY = 86_400.0
CHURN = [
    {"attribute": "uptime_s", "kind": "uptime"},
    {
        "attribute": "rssi_dbm",
        "kind": "pick",
        "chance": 0.5,
        "values": [{"value": -70, "weight": 1}, {"value": -90, "weight": 1}],
    },
    {
        "attribute": "storage_free_kb",
        "kind": "walk",
        "chance": 1,
        "start": 1000,
        "step": 50,
        "min": 900,
        "max": 1100,
    },
    {"attribute": "ipv4_wwan0", "kind": "address", "network": "10.64.0.0/10", "chance": 0.0},
]


def _inventory_puts(server):
    return [
        (e.step, {a["name"]: a["value"] for a in json.loads(e.body)})
        for e in server.exchanges
        if e.step.startswith("inventory")
    ]


def _run(churn, *, seed=5, until=3 * DAY, **sections):
    device, server, clock, _ = rig(profile(inventory_churn=churn, **sections), seed=seed)
    clock.stop_at(until, device)
    device.run()
    return device, server


def test_the_profile_tier_is_sent_in_the_signed_auth_body():
    _, server = _run([], tier="micro", until=100)
    (auth,) = server.of("auth")
    assert json.loads(auth.body)["tier"] == "micro"


def test_churned_attributes_change_between_inventory_cycles_and_have_their_own_step():
    _, server = _run(CHURN)
    puts = _inventory_puts(server)
    # One PUT at start and one per 8-hour cycle before the three days end: uptime always changes.
    assert len(puts) == 1 + 8
    assert puts[0][0] == "inventory" and {step for step, _ in puts[1:]} == {"inventory:churn"}
    uptimes = [values["uptime_s"] for _, values in puts]
    assert uptimes == sorted(uptimes) and uptimes[1] - uptimes[0] == 28_800
    walks = [values["storage_free_kb"] for _, values in puts]
    assert len(set(walks)) > 3 and all(900 <= w <= 1100 for w in walks)
    assert {values["rssi_dbm"] for _, values in puts} == {-70, -90}
    # chance 0: the address keeps its first value while no reboot happens.
    assert len({values["ipv4_wwan0"] for _, values in puts}) == 1
    assert puts[0][1]["ipv4_wwan0"].startswith("10.")


def test_unchanged_churn_is_not_sent_again():
    rules = [
        {
            "attribute": "rssi_dbm",
            "kind": "pick",
            "chance": 0.0,
            "values": [{"value": -70, "weight": 1}],
        }
    ]
    _, server = _run(rules)
    assert [step for step, _ in _inventory_puts(server)] == ["inventory"]


def test_churn_is_reproducible_under_the_seed_and_differs_across_seeds():
    first = _inventory_puts(_run(CHURN, seed=5)[1])
    again = _inventory_puts(_run(CHURN, seed=5)[1])
    other = _inventory_puts(_run(CHURN, seed=6)[1])
    assert first == again
    assert [v["storage_free_kb"] for _, v in first] != [v["storage_free_kb"] for _, v in other]


def test_churn_off_from_the_command_line_freezes_the_inventory():
    import dataclasses

    device, server, clock, _ = rig(profile(inventory_churn=CHURN), seed=5)
    traffic = device.behaviour.traffic.overridden(parse_overrides("churn=off,tier=system"))
    device.behaviour = dataclasses.replace(device.behaviour, traffic=traffic)
    clock.stop_at(DAY, device)
    device.run()
    puts = _inventory_puts(server)
    assert len(puts) == 1 and "uptime_s" not in puts[0][1]
    assert json.loads(server.of("auth")[0].body)["tier"] == "system"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tier=huge", "tier 'huge' is not one of standard, micro, system"),
        ("churn=maybe", "churn='maybe': use on or off"),
        ("websocket=on", r"unknown traffic 'websocket' \(known: .*, update_control_map\)"),
        ("deviceconnect=maybe", "deviceconnect='maybe': use on or off"),
        ("churn", "'churn' is not name=value"),
    ],
)
def test_bad_traffic_overrides_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides(text)


def test_deviceconnect_is_off_unless_the_profile_or_the_command_line_turns_it_on():
    from mendersim.device.behaviour import Behaviour

    off = Behaviour.from_profile(profile())
    on = Behaviour.from_profile(profile(deviceconnect=True))
    assert not off.traffic.deviceconnect and on.traffic.deviceconnect
    assert off.traffic.overridden(parse_overrides("deviceconnect=on")).deviceconnect
    assert not on.traffic.overridden(parse_overrides("deviceconnect=off")).deviceconnect
    # other switches stay as the profile says
    assert on.traffic.overridden(parse_overrides("churn=off")).deviceconnect
