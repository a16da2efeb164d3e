"""Start the embedded server as a real subprocess (tests, benchmarks, the harness's demos)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from mendersim.errors import MendersimError
from mendersim.mender_api.management import ManagementClient
from mendersim.server.commands import TOKEN_ENV
from mendersim.server.lifeline import PARENT_ENV

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class ServerHandle:
    url: str
    mgmt_token: str
    process: subprocess.Popen

    def management(self) -> ManagementClient:
        return ManagementClient(self.url, self.mgmt_token)


def _wait_ready(handle: ServerHandle, stderr_path: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    headers = {"Authorization": f"Bearer {handle.mgmt_token}"}
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            output = stderr_path.read_text(errors="replace").strip().splitlines()
            last = output[-1] if output else "no output"
            error = _PortTaken if "cannot listen" in last else MendersimError
            raise error(f"server exited with code {handle.process.returncode}: {last}")
        try:
            if requests.get(f"{handle.url}/_mendersim/status", headers=headers, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise MendersimError(f"server at {handle.url} did not answer within {_START_TIMEOUT:.0f} s")


class _PortTaken(MendersimError):
    """The free port found was taken by someone else before the server bound it."""


def _start(
    args: tuple[str, ...],
    data_dir: Path | None,
    env: Mapping[str, str] | None,
    log_file: Path | None = None,
    port: int | None = None,
):
    port = port or free_port()
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "mendersim.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    log_path = log_file or Path(tempfile.gettempdir()) / f"mendersim-server-{port}-{token[:8]}.log"
    # The token goes by environment (never on a command line, where `ps` shows it); the
    # parent PID lets the server end with this process however it ends.
    child_env = {**os.environ, **(env or {}), TOKEN_ENV: token, PARENT_ENV: str(os.getpid())}
    with open(log_path, "ab" if log_file else "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=child_env)
    handle = ServerHandle(f"http://127.0.0.1:{port}", token, process)
    try:
        _wait_ready(handle, log_path)
    except MendersimError:
        _stop(process)
        raise
    finally:
        if log_file is None:
            log_path.unlink(missing_ok=True)
    return handle


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(
    *args: str,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    port: int | None = None,
) -> Iterator[ServerHandle]:
    """`mendersim serve` on `port` (default: a free one) of 127.0.0.1 with a random management
    token; stopped with SIGTERM (so it flushes its state) when the block ends."""
    for attempt in range(3):
        try:
            handle = _start(args, data_dir, env, log_file, port)
            break
        except _PortTaken:
            if attempt == 2:
                raise
    try:
        yield handle
    finally:
        _stop(handle.process)
