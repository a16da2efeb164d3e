"""Two runs in a row on one store: the second counts what its own server accepted, not what the
store remembers, and its rollout's share is of the devices accepted and simulated now."""

from __future__ import annotations

import re

import pytest
from harness_helpers import TIME_SCALE, locust

from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

ROLLOUT = re.compile(r"rollout: deployment \S+ of \S+ to (\d+) of (\d+) accepted devices")


def _run(tmp_path, name: str, db, users: int, *extra: str) -> str:
    log = tmp_path / f"{name}.log"
    run = locust(
        "--headless", "-u", str(users), "-r", str(users), "-t", "10s",
        "--mendersim-db", str(db), "--mendersim-time-scale", TIME_SCALE,
        "--mendersim-scenario", "rollout", "--mendersim-rollout-share", "0.5",
        "--mendersim-rollout-delay", "20", *extra, log=log,
    )  # fmt: skip
    assert run.wait(timeout=90) == 0, log.read_text()[-3000:]
    return log.read_text()


def _rollout(output: str) -> tuple[int, int]:
    (found,) = ROLLOUT.findall(output)
    return int(found[0]), int(found[1])


def test_a_resumed_fleet_against_the_embedded_server_starts_as_new(small_fleet, tmp_path):
    for name in ("first", "second"):
        server_log = tmp_path / f"{name}.server.log"
        output = _run(tmp_path, name, small_fleet, 20, "--mendersim-server-log", str(server_log))
        # every run waits for its own 20 devices, accepted by its own (new) server
        assert _rollout(output) == (10, 20), output[-3000:]
        assert "devices accepted by the server in this run: 20" in output
        assert "deployments by outcome:" in output and "POST auth:" in output
        assert "mendersim server on http://127.0.0.1:" in server_log.read_text()


def test_a_persistent_server_is_counted_by_what_this_run_simulates(small_fleet, tmp_path):
    state = tmp_path / "server.json"
    with running_server("--db", str(state)) as server:
        token = ("--mendersim-mgmt-token-file", str(_token_file(tmp_path, server)))
        assert _rollout(_run(tmp_path, "first", small_fleet, 20, "--host", server.url, *token)) == (
            10,
            20,
        )
    with running_server("--db", str(state)) as server:
        management = server.management()
        assert management.count_devices("accepted") == 20  # the server kept its state
        token = ("--mendersim-mgmt-token-file", str(_token_file(tmp_path, server)))
        output = _run(tmp_path, "second", small_fleet, 10, "--host", server.url, *token)
        latest = max(management.list_deployments(), key=lambda d: d["created"])
        statistics = management.deployment_statistics(latest["id"])
    # 10 devices simulated now: the share is of them, not of the 20 the server remembers
    assert _rollout(output) == (5, 10), output[-3000:]
    assert sum(statistics.values()) == 5
    assert "devices accepted by the server in this run: 10" in output


def _token_file(tmp_path, server):
    path = tmp_path / "mgmt-token"
    path.write_text(server.mgmt_token, encoding="utf-8")
    return path
