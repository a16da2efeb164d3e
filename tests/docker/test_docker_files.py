"""The container files stay true to the code: no Docker engine runs here, so check what they
reference (files, subcommands, options) against the repository and the real parsers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mendersim.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
IMAGE_ROOT = "/opt/mendersim"
COMPOSE = yaml.safe_load((REPO / "docker/compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def expand(args: list[str]) -> list[str]:
    """Compose's `${VAR:-default}` with the defaults, image paths mapped onto the checkout."""
    args = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", a) for a in args]
    return [a.replace(IMAGE_ROOT, str(REPO)) for a in args]


def test_dockerfile_copies_files_that_exist() -> None:
    sources = [
        word
        for line in (REPO / "docker/Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for word in line.split()[1:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source


@pytest.mark.parametrize("service", ["seed", "server"])
def test_mendersim_entrypoints_parse(service: str) -> None:
    entrypoint = expand(SERVICES[service]["entrypoint"])
    assert entrypoint[0] == "mendersim"
    args = build_parser().parse_args(entrypoint[1:])
    assert args.command == entrypoint[1]
    for value in entrypoint:
        if value.startswith(str(REPO)):
            assert Path(value).exists(), value


@pytest.mark.parametrize("service", ["master", "worker"])
def test_locust_commands_parse_with_the_locustfile(service: str) -> None:
    """`--list` makes Locust parse every option, custom ones included, then exit."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO / "locustfiles/fleet.py"),
            *expand(SERVICES[service]["command"]),
            "--list",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "DeviceUser" in result.stdout


def test_grafana_mounts_the_shipped_provisioning() -> None:
    mount = SERVICES["grafana"]["volumes"][0].split(":")
    folder = (REPO / "docker" / mount[0]).resolve()
    assert mount[1] == "/etc/grafana/provisioning"
    assert (folder / "datasources").is_dir() and (folder / "dashboards").is_dir()
