"""The image and compose files pass the real linters, and what they reference exists; no
container engine runs here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dockerfile_stages as dockerfile
import yaml
from local_fleet import REPO, start, stop, wait_healthy

from mendersim.server.process import free_port

BIN = Path(sys.executable).parent
COMPOSE_FILE = REPO / "docker" / "compose.yaml"
COMPOSE_SECRETS = {
    "INFLUXDB_TOKEN": "influx-secret-token",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
    "MENDERSIM_MGMT_TOKEN": "mgmt-secret",
}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Debian's docker-compose resolves anchors, merges and ${VAR} the way an engine would."""
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS} | env,
    )


def test_hadolint_passes_the_dockerfile() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), str(dockerfile.DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_copies_files_that_exist_and_the_context_sends_them() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][0] == "*"  # allow-list: nothing is sent unless named
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = [
        word
        for _, instruction, rest in dockerfile.instructions()
        if instruction == "COPY" and not rest.startswith("--from")
        for word in rest.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (REPO / source).exists(), source
        assert source.rstrip("/") in kept, f"{source} is copied but not sent by .dockerignore"
    assert not kept & {".venv", "runs", "tests"}


def test_image_runs_as_an_unprivileged_user() -> None:
    users = [rest for _, instruction, rest in dockerfile.instructions() if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_server_health_check_command_answers_for_a_serving_server(tmp_path: Path) -> None:
    """The HEALTHCHECK's own command, against a real server in a maintenance window (faults
    make devices' requests fail, the health check must not) and with no token."""
    port = free_port()
    log = tmp_path / "server.log"
    server = start(
        [
            sys.executable,
            "-m",
            "mendersim.cli",
            "serve",
            "--port",
            str(port),
            "--maintenance",
            "0s+10m",
        ],
        dict(os.environ),
        log,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, log)
        check = [a.replace(":8080/", f":{port}/") for a in dockerfile.healthcheck("server")]
        assert check[0] == "python"
        ok = subprocess.run([sys.executable, *check[1:]], capture_output=True, timeout=10)
        assert ok.returncode == 0, ok.stderr
    finally:
        stop(server)
    down = subprocess.run([sys.executable, *check[1:]], capture_output=True, timeout=10)
    assert down.returncode != 0


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_resolves_the_stack() -> None:
    result = compose_config(COMPOSE_SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else port.get("host_ip", "")
            assert "127.0.0.1" in str(published), f"{name} publishes {port} on every interface"
        image = service.get("image", "")
        assert not image.endswith(":latest") and ":" in image, f"{name}: unpinned {image}"
    assert services["server"]["build"]["target"] == "server"
    # Secrets reach containers through the environment, never their command lines.
    for service in services.values():
        words = [*service.get("command", []), *service.get("entrypoint", [])]
        assert not set(COMPOSE_SECRETS.values()) & set(words)


def test_docker_compose_refuses_to_start_without_its_secrets() -> None:
    result = compose_config({})
    assert result.returncode != 0
    assert "set " in result.stderr and "Traceback" not in result.stderr


def test_grafana_mounts_the_shipped_provisioning() -> None:
    grafana = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["grafana"]
    mount = grafana["volumes"][0].split(":")
    folder = (REPO / "docker" / mount[0]).resolve()
    assert mount[1] == "/etc/grafana/provisioning"
    assert (folder / "datasources").is_dir() and (folder / "dashboards").is_dir()
