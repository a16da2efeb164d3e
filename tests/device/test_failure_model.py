"""The failure model: rates, quirks and determinism under a seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from device_fakes import make_record, profile

from mendersim.device import failures
from mendersim.device.behaviour import Behaviour
from mendersim.errors import ConfigError

AUTOMOTIVE = Path(__file__).resolve().parents[2] / "profiles" / "industries" / "automotive.yaml"


def outcomes(behaviour, seed, count=2000, deployment="dep-1", **record):
    return [
        behaviour.failure_for(make_record(f"dev-{n:06d}", **record), deployment, seed)
        for n in range(count)
    ]


def test_same_seed_same_outcomes_and_different_seeds_differ():
    behaviour = Behaviour.from_profile(profile(update={"success_rate": 0.5}))
    first = outcomes(behaviour, 42, 300)
    assert first == outcomes(behaviour, 42, 300)
    assert first != outcomes(behaviour, 43, 300)
    assert first != outcomes(behaviour, 42, 300, deployment="dep-2")


def test_success_share_matches_the_profile_rate():
    behaviour = Behaviour.from_profile(profile(update={"success_rate": 0.8}))
    results = outcomes(behaviour, 1)
    share = results.count(None) / len(results)
    assert share == pytest.approx(0.8, abs=0.03)


def test_failure_modes_follow_their_weights():
    weights = {failures.INSTALL_NO_SPACE: 3, failures.COMMIT_HEALTH_CHECK: 1}
    behaviour = Behaviour.from_profile(
        profile(update={"success_rate": 0.0, "failure_modes": weights})
    )
    results = outcomes(behaviour, 5)
    assert set(results) == set(weights)
    assert results.count(failures.INSTALL_NO_SPACE) / len(results) == pytest.approx(0.75, abs=0.04)


def test_quirks_adjust_rate_and_failure_weights_of_matching_devices():
    behaviour = Behaviour.from_profile(yaml.safe_load(AUTOMOTIVE.read_text()))
    old = outcomes(behaviour, 9, inventory={"firmware_version": "3.9.2"})
    new = outcomes(behaviour, 9, inventory={"firmware_version": "4.2.1"})
    assert old.count(None) / len(old) == pytest.approx(0.65, abs=0.03)
    assert new.count(None) / len(new) == pytest.approx(0.80, abs=0.03)
    # The quirk weights reboot_kernel_panic 3 instead of 2 (of 10 → 11 in total).
    panics = old.count(failures.REBOOT_KERNEL_PANIC) / (len(old) - old.count(None))
    assert panics == pytest.approx(3 / 11, abs=0.05)


def test_automotive_profile_reads():
    behaviour = Behaviour.from_profile(yaml.safe_load(AUTOMOTIVE.read_text()))
    assert behaviour.update_poll == 1800 and behaviour.retry_poll == 300
    assert behaviour.network.name == "lte"
    assert behaviour.down_kbps == 8000 and behaviour.up_kbps == 2000
    assert (behaviour.install.low, behaviour.install.high) == (60, 240)


def test_default_success_rate_is_eighty_percent():
    data = profile()
    del data["update"]
    assert Behaviour.from_profile(data).success_rate == 0.8


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"update": {"success_rate": 1.5}}, "update.success_rate"),
        ({"update": {"failure_modes": {"meteor_strike": 1}}}, "unknown failure mode"),
        ({"intervals": {"update_poll": 0}}, "update_poll"),
        ({"durations": {"install": {"min": 5, "max": 1}}}, "durations.install"),
        ({"network": {"profile": "carrier-pigeon"}}, "no network profile 'carrier-pigeon'"),
        ({"artifact_verify_key": "/nonexistent/key.pem"}, "artifact_verify_key"),
        ({"quirks": [{"reason": "no match"}]}, "quirks[0]"),
    ],
)
def test_bad_profile_values_are_config_errors(sections, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Behaviour.from_profile(profile(**sections))
