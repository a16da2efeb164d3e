"""The compose stack's commands, as `docker-compose config` resolves them, run as local
processes: seed, the embedded server (image entrypoint + command), the master and both workers
with their fixed worker ids. Only the run's length is added: the stack's master waits for the
web UI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dockerfile_stages as dockerfile
import pytest
import yaml
from local_fleet import LocalMap, accepted_devices, log_tail, run, start, stop, wait_healthy
from test_docker_files import COMPOSE_SECRETS, compose_config

USERS = 8


@pytest.mark.integration
def test_compose_services_run_a_distributed_fleet(tmp_path: Path) -> None:
    config = compose_config({**COMPOSE_SECRETS, "MENDERSIM_TIME_SCALE": "0.0005"})
    assert config.returncode == 0, config.stderr
    services = yaml.safe_load(config.stdout)["services"]
    data = tmp_path / "data"
    data.mkdir()
    local = LocalMap(tmp_path, hosts=("server", "master"), dirs={"/data": data})

    seed = services["seed"]
    assert run(local.argv(seed["entrypoint"]), local.env({}, "seed"), tmp_path / "seed.log") == 0

    server = services["server"]
    server_argv = local.argv([*dockerfile.entrypoint("server"), *server["command"]])
    assert "--public-url" in server_argv and local.server_url in server_argv
    processes = []
    try:
        log = tmp_path / "server.log"
        processes.append(start(server_argv, local.env(server["environment"], "server"), log))
        wait_healthy(local.server_url, processes[0], log)

        master = services["master"]
        master_argv = local.argv([*dockerfile.entrypoint("locust"), *master["command"]])
        master_argv += [
            "--headless",
            "--users",
            str(USERS),
            "--spawn-rate",
            str(USERS),
            "--run-time",
            "8s",
            "--expect-workers",
            "2",
        ]
        master_env = local.env(master["environment"], "master")
        master_env["MENDERSIM_INFLUX_URL"] = ""  # no InfluxDB here; its tags are tested apart
        master_log = tmp_path / "master.log"
        master_process = start(master_argv, master_env, master_log)
        processes.append(master_process)
        for name in ("worker-1", "worker-2"):
            worker = services[name]
            argv = local.argv([*dockerfile.entrypoint("locust"), *worker["command"]])
            env = local.env(worker["environment"], "worker") | {"MENDERSIM_INFLUX_URL": ""}
            env["MENDERSIM_LOG_FILE"] = str(tmp_path / f"{name}.simulator.log")
            processes.append(start(argv, env, tmp_path / f"{name}.log"))
        assert master_process.wait(timeout=120) == 0, log_tail(master_log)
        for worker_process in processes[2:]:
            assert worker_process.wait(timeout=60) == 0
        token = server["environment"]["MENDERSIM_MGMT_TOKEN"]
        assert accepted_devices(local.server_url, token) == USERS
    finally:
        for process in reversed(processes):
            stop(process)
    with sqlite3.connect(data / "fleet.db") as db:
        assert db.execute("SELECT count(*) FROM devices").fetchone()[0] == 300
