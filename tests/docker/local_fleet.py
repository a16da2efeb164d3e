"""Runs the commands that container and cluster files give their containers as local processes
on 127.0.0.1: image paths map onto the checkout and a temporary directory, service names onto
127.0.0.1 and free ports, so what the files say to run is run, not only parsed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mendersim.server.process import free_port

REPO = Path(__file__).resolve().parents[2]
IMAGE_ROOT = "/opt/mendersim"
SERVER_PORT_IN_IMAGE = "8080"
COMMANDS = {
    "locust": [sys.executable, "-m", "locust"],
    "mendersim": [sys.executable, "-m", "mendersim.cli"],
}
_K8S_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def kubernetes_expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` in command and args, from the container's environment."""
    return _K8S_VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), value)


@dataclass
class LocalMap:
    """Where the containers' paths and hosts are on this machine."""

    tmp: Path
    hosts: tuple[str, ...]  # service names that mean the server or the master
    server_port: int = field(default_factory=free_port)
    master_port: int = field(default_factory=free_port)
    dirs: dict[str, Path] = field(default_factory=dict)  # container directory -> local one

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def value(self, text: str) -> str:
        # Container directories are mapped before the image root becomes the checkout, which may
        # itself lie under one of them (a clone in /tmp).
        for inside, outside in self.dirs.items():
            if text == inside or text.startswith(inside + "/"):
                return str(outside) + text[len(inside) :]
        text = text.replace(IMAGE_ROOT, str(REPO))
        for host in self.hosts:
            text = text.replace(f"http://{host}:{SERVER_PORT_IN_IMAGE}", self.server_url)
        return text

    def argv(self, command: list[str]) -> list[str]:
        args = [self.value(a) for a in command]
        local = list(COMMANDS[args[0]]) if args[0] in COMMANDS else [args[0]]
        rest = args[1:]
        for i, arg in enumerate(rest):
            if arg == "0.0.0.0":
                rest[i] = "127.0.0.1"
            elif arg == SERVER_PORT_IN_IMAGE and i and rest[i - 1] == "--port":
                rest[i] = str(self.server_port)
            elif arg in self.hosts and i and rest[i - 1] == "--master-host":
                rest[i] = "127.0.0.1"
        return local + rest

    def env(self, env: dict[str, str], role: str) -> dict[str, str]:
        local = {k: self.value(v) for k, v in env.items()}
        local["LOCUST_MASTER_BIND_PORT" if role == "master" else "LOCUST_MASTER_NODE_PORT"] = str(
            self.master_port
        )
        return {**os.environ, **local}


def run(argv: list[str], env: dict[str, str], log: Path, timeout: float = 180) -> int:
    with open(log, "wb") as out:
        return subprocess.run(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=log.parent
        ).returncode


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
        )


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """The container health check's endpoint, polled as an orchestrator would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            if requests.get(f"{url}/_mendersim/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not healthy in {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def accepted_devices(url: str, token: str) -> int:
    status = requests.get(
        f"{url}/_mendersim/status", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()
    return status["devices"].get("accepted", 0)


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
