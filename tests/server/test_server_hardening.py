"""What an unauthenticated or careless client can make the server do: bounded, answered in
Mender's JSON, and no secret on a command line or in a world-readable file."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import psutil
import pytest
import requests

from mendersim.server.limits import AUTH_LIMIT, INVENTORY_LIMIT, MAX_JSON_DEPTH, json_depth
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

AUTH = "/api/devices/v1/authentication/auth_requests"
INVENTORY = "/api/devices/v1/inventory/device/attributes"
UPLOAD = "/api/management/v1/deployments/artifacts"


def _assert_mender_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(response.json()) >= {"error", "request_id"}


def test_json_depth_ignores_brackets_in_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0


def test_oversized_auth_body_is_413_before_it_is_read(server):
    body = b"x" * (AUTH_LIMIT + 1)
    response = requests.post(server.url + AUTH, data=body, headers={"X-MEN-Signature": "s"})
    _assert_mender_error(response, 413)


def test_oversized_chunked_inventory_body_is_413(server, make_device):
    device = make_device()
    device.authenticate()

    def chunks():
        for _ in range(INVENTORY_LIMIT // 1024 + 2):
            yield b" " * 1024

    response = requests.patch(
        server.url + INVENTORY,
        data=chunks(),  # no Content-Length: the limit must hold while reading
        headers={"Authorization": f"Bearer {device.token}", "Content-Type": "application/json"},
    )
    _assert_mender_error(response, 413)


def test_deep_json_nesting_is_a_json_400_not_a_500(server):
    response = requests.post(
        server.url + AUTH, data=b"[" * 100_000, headers={"X-MEN-Signature": "s"}
    )
    # 100,000 brackets exceed the auth limit; nesting within the limit is refused too
    _assert_mender_error(response, 413)
    nested = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    response = requests.post(server.url + AUTH, data=nested, headers={"X-MEN-Signature": "s"})
    _assert_mender_error(response, 400)
    assert "nested" in response.json()["error"]


def test_upload_limit_is_configurable(tmp_path, make_artifact):
    artifact = make_artifact("big-one", size=64 * 1024)
    with running_server("--max-upload", "8KiB") as server:
        with artifact.open("rb") as f:
            response = requests.post(
                server.url + UPLOAD,
                files={"artifact": ("a.mender", f)},
                headers={"Authorization": f"Bearer {server.mgmt_token}"},
            )
        _assert_mender_error(response, 413)
        assert server.management().list_artifacts() == []


def test_slow_client_is_cut_off_and_others_are_served(make_artifact):
    with running_server("--client-timeout", "1s") as server:
        host, port = server.url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)))
        slow.sendall(
            f"POST {AUTH} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            "X-MEN-Signature: s\r\n\r\n{".encode()
        )
        half_headers = socket.create_connection((host, int(port)))
        half_headers.sendall(b"GET /_mendersim/status HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert server.management().count_devices("accepted") == 0  # served meanwhile
        slow.settimeout(10)
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        half_headers.settimeout(10)
        assert half_headers.recv(4096) == b""  # closed without an answer
        assert time.monotonic() - started < 8
        slow.close()
        half_headers.close()


def test_state_file_is_private_and_token_never_on_the_command_line(tmp_path):
    db = tmp_path / "server.db"
    with running_server("--db", str(db)) as server:
        mode = stat.S_IMODE(db.stat().st_mode)
        assert mode == 0o600
        command_line = " ".join(psutil.Process(server.process.pid).cmdline())
        assert server.mgmt_token not in command_line
        assert server.management().count_devices("accepted") == 0


def test_token_file_is_read_and_a_missing_one_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "serve", "--mgmt-token-file", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--mgmt-token-file" in result.stderr


def test_server_binds_loopback_by_default(server):
    connections = psutil.Process(server.process.pid).net_connections(kind="tcp")
    listening = [c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN]
    assert listening and set(listening) == {"127.0.0.1"}


def test_unwritable_data_dir_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "serve", "--data-dir", "/proc/nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--data-dir: cannot create /proc/nope" in result.stderr


_PARENT = """
import sys, time
from mendersim.server.process import running_server
with running_server() as server:
    print(server.process.pid, server.url, flush=True)
    time.sleep(120)
"""


def test_server_dies_with_a_sigkilled_parent(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        pid_text, url = parent.stdout.readline().split()
        server = psutil.Process(int(pid_text))
        assert os.getpgid(server.pid) == os.getpgid(parent.pid)  # in the run's process group
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        server.wait(10)  # raises TimeoutExpired if it were orphaned
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    finally:
        parent.kill()


def test_fault_shares_on_one_endpoint_mean_what_they_say(tmp_path):
    from mendersim.server.faults import FaultInjector, FaultSettings

    settings = FaultSettings(
        error_rate=["next=0.2:503"], rate_limit=["next=0.1:5"], drop_rate=["next=0.1"], seed=3
    )
    injector = FaultInjector(settings, 0.0)
    decisions = [injector.decide("next", 1.0) for _ in range(20_000)]
    share_503 = sum(d.status == 503 for d in decisions) / len(decisions)
    share_429 = sum(d.status == 429 for d in decisions) / len(decisions)
    share_drop = sum(d.drop for d in decisions) / len(decisions)
    assert abs(share_503 - 0.2) < 0.015
    assert abs(share_429 - 0.1) < 0.01
    assert abs(share_drop - 0.1) < 0.01


def test_fault_shares_above_one_are_refused():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mendersim.cli",
            "serve",
            "--error-rate",
            "next=0.7",
            "--drop-rate",
            "next=0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "add up to more than 1" in result.stderr and "Traceback" not in result.stderr
