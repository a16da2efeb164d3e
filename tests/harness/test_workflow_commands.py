"""A Mender user's workflow: export the seeded identities, pre-authorize them on a server that
accepts only pre-authorized devices, run the fleet against it; and `mendersim options`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml
from harness_helpers import TIME_SCALE, locust, seed

from mendersim.fleet.store import SeedStore
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration


def mendersim(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MENDERSIM_", "MENDER_"))}
    return subprocess.run(
        [sys.executable, "-m", "mendersim.cli", *args],
        capture_output=True, text=True, timeout=120, env={**clean, **(env or {})},
    )  # fmt: skip


def test_export_lists_identities_and_public_keys_only(small_fleet, tmp_path):
    out = tmp_path / "fleet.csv"
    done = mendersim("fleet", "export", str(small_fleet), "--format", "csv", "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    with SeedStore.open(small_fleet) as store:
        records = store.load_devices()
    assert [r["device_id"] for r in rows] == [r.device_id for r in records]
    assert json.loads(rows[0]["identity_data"]) == records[0].id_data
    assert rows[0]["public_key"] == records[0].public_key_pem
    as_json = mendersim("fleet", "export", str(small_fleet), "--format", "json")
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(lines) == 40 and lines[5]["identity_data"] == records[5].id_data
    assert "PRIVATE KEY" not in out.read_text() + as_json.stdout


def test_preauthorize_then_run_accepts_every_device(small_fleet, tmp_path):
    token_file = tmp_path / "token"
    with running_server("--acceptance", "preauth") as server:
        missing = mendersim("preauthorize", str(small_fleet), "--host", server.url)
        assert missing.returncode == 2 and "management token" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1
        env = {"MENDERSIM_MGMT_TOKEN": server.mgmt_token}
        first = mendersim(
            "preauthorize", str(small_fleet), "--host", server.url, "--profiles", "automotive",
            env=env,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        assert "40 devices pre-authorized, 0 already known" in first.stdout
        token_file.write_text(server.mgmt_token + "\n", encoding="utf-8")
        again = mendersim(
            "preauthorize", str(small_fleet), "--host", server.url, "--token-file", str(token_file)
        )
        assert "0 devices pre-authorized, 40 already known" in again.stdout, again.stderr
        assert server.management().count_devices("preauthorized") == 40
        rules = tmp_path / "rules.yaml"
        rules.write_text("fleet:\n  accepted_share: 1.0\n", encoding="utf-8")
        run = locust(
            "--headless", "-u", "40", "-r", "40", "-t", "6s", "--host", server.url,
            "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
            "--thresholds", str(rules), log=tmp_path / "run.log",
        )  # fmt: skip
        code = run.wait(timeout=60)
        accepted = server.management().count_devices("accepted")
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert accepted == 40


def test_options_lists_every_locustfile_option_with_its_variable():
    done = mendersim("options", "--json")
    assert done.returncode == 0, done.stderr
    listed = {doc["option"]: doc for doc in json.loads(done.stdout)}
    assert listed["--mendersim-accept-timeout"]["env_var"] == "MENDERSIM_ACCEPT_TIMEOUT"
    assert listed["--mendersim-mgmt-token"]["secret"]
    assert listed["--influx-url"]["env_var"] == "MENDERSIM_INFLUX_URL"
    assert listed["--thresholds"]["default"] == ""
    assert not listed["--mendersim-db"]["web_ui"]
    assert all(doc["env_var"] for doc in listed.values())


def test_seed_says_when_only_run_time_settings_changed(tmp_path):
    db = seed(tmp_path, [{"profile": "automotive", "count": 3}])
    config = tmp_path / "fleet.yaml"
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    config.write_text(yaml.safe_dump({**document, "tenant_token": "changed"}), encoding="utf-8")
    done = mendersim("seed", str(config), "--db", str(db), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "only run-time settings changed (tenant_token)" in done.stdout
    with SeedStore.open(db) as store:
        assert store.fleet_config()["tenant_token"] == "changed"
