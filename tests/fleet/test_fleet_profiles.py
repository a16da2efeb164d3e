"""Profiles and fleet configs: shipped files load; bad files name file, key path and reason."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fleet_helpers import INDUSTRIES, REPO, shipped_profile, variant
from jsonschema import Draft202012Validator

from mendersim.errors import ConfigError
from mendersim.fleet import keys
from mendersim.fleet.profiles import load_fleet, load_profile
from mendersim.fleet.schema import FAILURE_MODES, FLEET_SCHEMA, PROFILE_SCHEMA

SHIPPED = sorted(p.stem for p in INDUSTRIES.glob("*.yaml"))


def test_schemas_are_valid_draft_2020_12():
    Draft202012Validator.check_schema(PROFILE_SCHEMA)
    Draft202012Validator.check_schema(FLEET_SCHEMA)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_with_defaults(name):
    profile = load_profile(INDUSTRIES / f"{name}.yaml")
    assert profile["name"] == name
    assert 0 <= profile["update"]["success_rate"] <= 1
    assert set(profile["update"]["failure_modes"]) <= set(FAILURE_MODES)
    assert profile["intervals"]["update_poll"] > 0


def test_shipped_profiles_cover_every_vertical_and_key_type():
    assert {"automotive", "smart-building", "medical", "industrial"} <= set(SHIPPED)
    kinds = {load_profile(INDUSTRIES / f"{n}.yaml")["identity"]["kind"] for n in SHIPPED}
    assert kinds == {"vin", "mac", "udi", "serial"}
    used = set()
    for name in SHIPPED:
        key_type = load_profile(INDUSTRIES / f"{name}.yaml")["key_type"]
        used |= {key_type} if isinstance(key_type, str) else {c["value"] for c in key_type}
    assert used == set(keys.KEY_TYPES)


def test_demo_fleet_loads():
    fleet = load_fleet(REPO / "profiles" / "fleets" / "demo.yaml")
    assert [(g.profile, g.count) for g in fleet.groups] == [
        ("automotive", 100),
        ("smart-building", 100),
        ("medical", 50),
        ("industrial", 50),
    ]
    assert fleet.seed == 42
    assert fleet.document["logging"]["backups"] == 5  # default filled
    assert set(fleet.profiles) == {"automotive", "smart-building", "medical", "industrial"}


def test_profile_found_next_to_the_fleet_file_before_the_shipped_one(write_fleet):
    mine = variant("automotive", "automotive", artifact_name="my-fw-1.0")
    fleet = load_fleet(write_fleet([("automotive", 3)], profiles={"automotive": mine}))
    assert fleet.profiles["automotive"]["artifact_name"] == "my-fw-1.0"


def test_profile_given_as_a_path(write_fleet, tmp_path):
    path = write_fleet(
        [("../industries/cars.yaml", 2)], profiles={"cars": variant("automotive", "cars")}
    )
    assert load_fleet(path).groups[0].profile == "cars"


def error_of(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_fleet(path)
    return str(info.value)


def test_bad_count_names_file_and_key_path(write_fleet):
    path = write_fleet([("automotive", 5), ("medical", -3)])
    assert error_of(path) == f"{path}: groups[1].count: -3 is less than the minimum of 1"


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("server_url: http://x\ngroups:\n  - profile: automotive\n   count: [1\n")
    message = error_of(path)
    assert message.startswith(f"{path}:4:") and "YAML syntax error" in message


def test_missing_file_and_unknown_profile(write_fleet, tmp_path):
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file"
    message = error_of(write_fleet([("spaceship", 1)]))
    assert "groups[0].profile: unknown profile 'spaceship'" in message


def test_unknown_top_level_key(write_fleet):
    message = error_of(write_fleet([("automotive", 1)], pool_interval=60))
    assert "Additional properties are not allowed ('pool_interval' was unexpected)" in message


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        (
            {
                "identity": {
                    **shipped_profile("automotive")["identity"],
                    "manufacturers": [{"name": "X", "wmi": "IOQ", "weight": 1}],
                }
            },
            "identity.manufacturers[0].wmi",
            "does not match",
        ),
        ({"key_type": "rsa1024"}, "key_type", "is not valid"),
        ({"update": {"failure_modes": {"gremlins": 1}}}, "update.failure_modes", "gremlins"),
        ({"update": {"success_rate": 1.5}}, "update.success_rate", "greater than the maximum"),
        ({"network": {"profile": ""}}, "network.profile", "should be non-empty"),
        (
            {"inventory": {"manufacturer": [{"value": "x", "weight": 1}]}},
            "inventory.manufacturer",
            "reserved",
        ),
        (
            {"quirks": [{"match": {"firmwre_version": "1"}, "success_rate_delta": -0.1}]},
            "quirks[0].match.firmwre_version",
            "not an attribute of this profile",
        ),
        ({"durations": {"install": {"min": 9, "max": 3}}}, "durations.install", "min is greater"),
    ],
)
def test_bad_profile_names_file_and_key_path(write_fleet, tmp_path, change, where, reason):
    path = write_fleet([("cars", 1)], profiles={"cars": variant("automotive", "cars", **change)})
    message = error_of(path)
    assert message.startswith(f"{tmp_path / 'industries' / 'cars.yaml'}: {where}: "), message
    assert reason in message


def test_unknown_network_profile_when_network_profiles_exist(write_fleet, tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "network").mkdir(parents=True)
    (root / "network" / "lte.yaml").write_text("name: lte\n")
    monkeypatch.setenv("MENDERSIM_PROFILES_DIR", str(root))
    cars = variant("automotive", "cars", network={"profile": "moon-link"})
    message = error_of(write_fleet([("cars", 1)], profiles={"cars": cars}))
    assert "network.profile: unknown network profile 'moon-link' (available: lte)" in message


def test_profile_name_must_match_its_file(write_fleet):
    message = error_of(write_fleet([("cars", 1)], profiles={"cars": variant("automotive", "auto")}))
    assert "cars.yaml: name: 'auto' does not match the file name" in message


def test_two_different_profiles_under_one_name(write_fleet, tmp_path):
    other = variant("automotive", "automotive", artifact_name="other")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "automotive.yaml").write_text(
        (INDUSTRIES / "automotive.yaml").read_text().replace("tcu-fw-4.2.1", "x-1")
    )
    path = write_fleet(
        [("automotive", 1), ("../elsewhere/automotive.yaml", 1)], profiles={"automotive": other}
    )
    assert "groups[1].profile: a different profile named 'automotive'" in error_of(path)


def test_cli_reports_bad_config_in_one_line_without_traceback(write_fleet, tmp_path):
    path = write_fleet([("automotive", 0)])
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "seed", str(path), "--db", str(tmp_path / "f.db")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"mendersim: error: {path}: groups[0].count: 0 is less than the minimum of 1"
    ]
    assert not (tmp_path / "f.db").exists()
