import argparse

import pytest

from mendersim.errors import ConfigError
from mendersim.fleet.store import SeedStore
from mendersim.harness.config.options import HarnessOptions
from mendersim.harness.coordination.coordinator import Coordinator

DEFAULTS = {
    "db": "fleet.db",
    "fleet": "",
    "profiles": "",
    "time_scale": 1.0,
    "connection": "fresh",
    "scenario": "steady",
    "ramp_window": 0.0,
    "rollout_share": 0.1,
    "rollout_artifact_size": 1_048_576,
    "rollout_delay": 120.0,
    "mgmt_token": "",
    "mgmt_token_file": "",
    "tenant_token": "",
    "tenant_token_file": "",
    "accept_timeout": 0.0,
    "lag_bound": 1.0,
    "worker_id": "",
    "log_file": "",
    "log_level": "",
    "server_log": "",
    "traffic": "",
    "idle_timeout": 90.0,
    "start_pacing": "adaptive",
}


def options(**changes) -> HarnessOptions:
    values = {**DEFAULTS, **changes}
    return HarnessOptions.from_parsed(
        argparse.Namespace(**{f"mendersim_{k}": v for k, v in values.items()})
    )


def test_profiles_are_a_comma_separated_filter():
    assert options(profiles=" automotive, medical ,").profiles == ("automotive", "medical")


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"time_scale": -1}, "--mendersim-time-scale"),
        ({"time_scale": float("nan")}, "--mendersim-time-scale"),
        ({"lag_bound": 0}, "--mendersim-lag-bound"),
        ({"idle_timeout": 0}, "--mendersim-idle-timeout"),
        ({"rollout_share": 0}, "--mendersim-rollout-share"),
        ({"scenario": "ramp"}, "--mendersim-ramp-window"),
        ({"connection": "pooled"}, "--mendersim-connection"),
        ({"traffic": "tier=huge"}, "--mendersim-traffic"),
        ({"db": ""}, "--mendersim-db"),
    ],
)
def test_bad_values_name_the_option(changes, where):
    with pytest.raises(ConfigError) as caught:
        options(**changes)
    assert caught.value.where == where


def _coordinator(db, opts) -> Coordinator:
    return Coordinator(
        None, SeedStore.open(db), opts, on_refused=lambda _: None, live_workers=lambda: []
    )


def test_ramp_window_is_real_seconds_whatever_the_time_scale(small_fleet):
    ramp = _coordinator(small_fleet, options(scenario="ramp", ramp_window=60, time_scale=0.01))
    settings = ramp.engine_settings()
    assert settings["start_spread"] * settings["time_scale"] == pytest.approx(60)
    steady = _coordinator(small_fleet, options(time_scale=0.01)).engine_settings()
    assert steady["start_spread"] is None  # one poll interval, the engine's default
    assert steady["poll_interval"] == 1800
    assert ramp.fleet_size == 40
    assert ramp.device_types() == ["gateway-s32g", "ivi-rcar-h3", "tcu-imx8mm"]


@pytest.mark.parametrize("token", ["mgmt_token", "tenant_token"])
def test_a_token_comes_from_its_file_unless_given(tmp_path, token):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n", encoding="utf-8")
    assert getattr(options(**{f"{token}_file": str(token_file)}), token) == "from-file"
    given = options(**{token: "given", f"{token}_file": str(token_file)})
    assert getattr(given, token) == "given"
    option = "--mendersim-" + token.replace("_", "-") + "-file"
    with pytest.raises(ConfigError, match=rf"{option}: .*missing"):
        options(**{f"{token}_file": str(tmp_path / "missing")})


def test_start_pacing_is_adaptive_or_off():
    assert options().start_pacing == "adaptive"
    assert options(start_pacing="off").start_pacing == "off"
    with pytest.raises(ConfigError, match=r"--mendersim-start-pacing: 'fast' is not one of"):
        options(start_pacing="fast")
