"""Runs in a row on one store: each counts what its own server accepted, not what the store
remembers, and its rollout's share is of the devices accepted and simulated now. The store keeps
each device's status per server: a resumed fleet starts from what that server said last, and
against another server as new."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from harness_helpers import TIME_SCALE, locust

from mendersim.fleet.acceptance import ServerKey
from mendersim.fleet.store import SeedStore
from mendersim.server.process import free_port, running_server

pytestmark = pytest.mark.integration

ROLLOUT = re.compile(r"rollout: deployment \S+ of \S+ to (\d+) of (\d+) accepted devices")


def _run(tmp_path, name: str, db, users: int, *extra: str, seconds: int = 10) -> str:
    log = tmp_path / f"{name}.log"
    run = locust(
        "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--mendersim-db", str(db), "--mendersim-time-scale", TIME_SCALE,
        "--mendersim-scenario", "rollout", "--mendersim-rollout-share", "0.5",
        "--mendersim-rollout-delay", "20", "--mendersim-rollout-artifact-size", "16384",
        "--mendersim-run-dir", str(tmp_path / name), *extra, log=log,
    )  # fmt: skip
    assert run.wait(timeout=90) == 0, log.read_text()[-3000:]
    return log.read_text()


def _rollout(output: str) -> tuple[int, int]:
    (found,) = ROLLOUT.findall(output)
    return int(found[0]), int(found[1])


def _fleet(tmp_path, name: str) -> dict[str, int]:
    """The devices by status this run's Fleet tab showed at the end (run.json)."""
    record = json.loads((tmp_path / name / "run.json").read_text(encoding="utf-8"))
    return record["fleet"]["devices_by_status"]


def _kept(db, server: str) -> dict[str, int]:
    """The statuses the store keeps for one server."""
    with sqlite3.connect(db) as conn:
        query = "SELECT status, COUNT(*) FROM acceptance WHERE server = ? GROUP BY 1"
        return dict(conn.execute(query, (server,)))


def test_a_resumed_fleet_against_the_embedded_server_starts_as_new(small_fleet, tmp_path):
    for name in ("first", "second"):
        output = _run(tmp_path, name, small_fleet, 20)
        # every run waits for its own 20 devices, accepted by its own (new) server
        assert _rollout(output) == (10, 20), output[-3000:]
        assert "devices accepted by the server in this run: 20" in output
        assert "deployments by outcome:" in output and "POST auth:" in output
        # the embedded server's log is kept in the run folder
        assert (
            "mendersim server on http://127.0.0.1:" in (tmp_path / name / "server.log").read_text()
        )
        record = json.loads((tmp_path / name / "run.json").read_text(encoding="utf-8"))
        # the Fleet tab and the rollout agree with the embedded server's own status
        assert record["fleet"]["devices_by_status"] == {"accepted": 20}
        assert record["server"]["devices"] == {"accepted": 20}
        assert sum(record["server"]["device_deployments"].values()) == 10
        # the store keeps the last run's answers only: the next embedded server starts empty
        assert _kept(small_fleet, "embedded") == {"accepted": 20}


def test_acceptance_is_remembered_per_server(small_fleet, tmp_path):
    state, port = tmp_path / "server.json", free_port()
    with running_server("--db", str(state), port=port) as server:
        token = ("--mendersim-mgmt-token-file", str(_token_file(tmp_path, server)))
        output = _run(tmp_path, "first", small_fleet, 20, "--host", server.url, *token)
        status = server.management().mendersim_status()
    url = ServerKey.of(server.url).url
    assert _rollout(output) == (10, 20), output[-3000:]
    assert _fleet(tmp_path, "first") == {"accepted": 20} and status["devices"] == {"accepted": 20}
    assert sum(status["device_deployments"].values()) == 10
    assert _kept(small_fleet, url) == {"accepted": 20}

    # The same server, restarted on its URL with its state; it rejects two of its devices.
    with running_server("--db", str(state), port=port) as server:
        management = server.management()
        assert management.count_devices("accepted") == 20  # the server kept its state
        with SeedStore.open(small_fleet) as store:
            rejected = {json.dumps(r.id_data, sort_keys=True) for r in store.load_devices(limit=2)}
        for device in management.list_devices(status="accepted"):
            if json.dumps(device["identity_data"], sort_keys=True) in rejected:
                (auth,) = device["auth_sets"]
                management.set_auth_status(device["id"], auth["id"], "rejected")
        token = ("--mendersim-mgmt-token-file", str(_token_file(tmp_path, server)))
        output = _run(
            tmp_path, "second", small_fleet, 10, "--host", server.url, *token,
            "--mendersim-rollout-delay", "4", seconds=14,
        )  # fmt: skip
        latest = max(management.list_deployments(), key=lambda d: d["created"])
        statistics = management.deployment_statistics(latest["id"])
        status = management.mendersim_status()
    # The store knew them accepted by this server: refused now, they are rejected, not new;
    # the share is of the 8 devices simulated and accepted now, not of the 18 the server holds.
    assert _fleet(tmp_path, "second") == {"accepted": 8, "rejected": 2}, output[-3000:]
    assert status["devices"] == {"accepted": 18, "rejected": 2}
    assert _rollout(output) == (4, 8) and sum(statistics.values()) == 4
    assert "devices accepted by the server in this run: 8" in output
    assert _kept(small_fleet, url) == {"accepted": 18, "rejected": 2}

    # Another server, which accepts only the 5 devices pre-authorized on it: the others are
    # new to it (pending), although the store knows all of them accepted by the first one.
    with running_server("--acceptance", "preauth") as other:
        management = other.management()
        with SeedStore.open(small_fleet) as store:
            for record in store.load_devices(limit=5):
                management.preauthorize(record.id_data, record.public_key_pem)
        token = ("--mendersim-mgmt-token-file", str(_token_file(tmp_path, other)))
        output = _run(
            tmp_path, "third", small_fleet, 10, "--host", other.url, *token,
            "--mendersim-rollout-delay", "4", seconds=14,
        )  # fmt: skip
        (deployment,) = management.list_deployments()
        statistics = management.deployment_statistics(deployment["id"])
        status = management.mendersim_status()
    assert _fleet(tmp_path, "third") == {"accepted": 5, "not accepted": 5}, output[-3000:]
    assert status["devices"] == {"accepted": 5, "pending": 5}
    assert _rollout(output) == (3, 5) and sum(statistics.values()) == 3
    assert _kept(small_fleet, ServerKey.of(other.url).url) == {"accepted": 5, "pending": 5}
    assert _kept(small_fleet, url) == {"accepted": 18, "rejected": 2}  # the first one's stays


def _token_file(tmp_path, server):
    path = tmp_path / "mgmt-token"
    path.write_text(server.mgmt_token, encoding="utf-8")
    return path
