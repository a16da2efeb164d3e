"""The embedded server's deviceconnect: the upgrade, the JWT check, its pings, the count."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from mendersim.harness.worker.websocket import upgrade_request
from mendersim.server.process import ServerHandle, running_server

pytestmark = pytest.mark.integration

CONNECT = "/api/devices/v1/deviceconnect/connect"
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("server-data")
    with running_server("--deviceconnect-ping", "1s", data_dir=data) as handle:
        yield handle


def _status(server: ServerHandle) -> dict[str, int]:
    answer = requests.get(
        f"{server.url}/_mendersim/status",
        headers={"Authorization": f"Bearer {server.mgmt_token}"},
        timeout=10,
    )
    return answer.json()["deviceconnect"]


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _raw_upgrade(server: ServerHandle, token: str) -> tuple[socket.socket, requests.Response]:
    """The device's own upgrade bytes over a plain socket; the 101 as requests' objects."""
    host, port = server.url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {token}"}
    _, data = upgrade_request(("http", host, int(port)), CONNECT, headers)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(data)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    status_line, *lines = head.split("\r\n")
    request_line, *request_lines = data.decode().split("\r\n\r\n")[0].split("\r\n")
    method, target, _ = request_line.split(" ")
    request = requests.Request(
        method,
        server.url + target,
        headers=dict(line.split(": ", 1) for line in request_lines if not line.startswith("Host")),
    ).prepare()
    response = requests.Response()
    response.status_code = int(status_line.split(" ")[1])
    response.headers = CaseInsensitiveDict(line.split(": ", 1) for line in lines)
    response._content = b""
    response.request = request
    response.url = request.url
    return sock, response


def test_the_devices_upgrade_is_answered_101_as_the_spec_says_and_counted(
    server, make_device, spec_check
):
    device = make_device()
    assert device.authenticate().status_code == 200
    sock, response = _raw_upgrade(server, device.token)
    try:
        assert response.status_code == 101
        assert response.headers["Upgrade"].lower() == "websocket"
        spec_check(response)  # the request's headers and the answer's, X-MEN-RequestID
        _wait_for(lambda: _status(server) == {"connected": 1, "connections": 1})
        second, _ = _raw_upgrade(server, device.token)  # one device, two links: still one
        _wait_for(lambda: _status(server) == {"connected": 1, "connections": 2})
        second.close()
    finally:
        sock.close()
    _wait_for(lambda: _status(server) == {"connected": 0, "connections": 0})


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", None])
def test_a_bad_or_missing_token_is_refused_with_menders_json_401(server, spec_check, authorization):
    headers = dict(UPGRADE)
    if authorization:
        headers["Authorization"] = authorization
    response = requests.get(server.url + CONNECT, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    spec_check(response, valid_request=authorization is not None)  # no token: invalid on purpose
    assert _status(server)["connected"] == 0


def test_a_plain_get_is_a_json_400(server, make_device, spec_check):
    device = make_device()
    device.authenticate()
    response = requests.get(server.url + CONNECT, headers=device.headers(), timeout=10)
    assert response.status_code == 400
    spec_check(response, valid_request=False)  # `Connection: keep-alive`, not an upgrade


async def _talk(url: str, token: str, answer_pings: bool) -> list[tuple[str, object]]:
    """What the server sends in 4 s to a link that answers its pings, or stays silent."""
    seen: list[tuple[str, object]] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url + CONNECT, headers=headers, autoping=False) as ws,
    ):
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
            seen.append((message.type.name, message.data))
            if message.type == aiohttp.WSMsgType.PING and answer_pings:
                await ws.pong(message.data)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
    return seen


def test_the_server_pings_and_closes_a_link_that_stays_silent(server, make_device):
    device = make_device()
    device.authenticate()
    answered = asyncio.run(_talk(server.url, device.token, answer_pings=True))
    # a ping every second after the last pong; the link stays open
    assert [kind for kind, _ in answered].count("PING") >= 3
    assert "CLOSE" not in [kind for kind, _ in answered]
    silent = asyncio.run(_talk(server.url, device.token, answer_pings=False))
    kinds = [kind for kind, _ in silent]
    assert kinds[0] == "PING" and kinds[-1] == "CLOSE"
    assert silent[-1][1] == aiohttp.WSCloseCode.INTERNAL_ERROR  # deviceconnect's timeout close


def test_deviceconnect_ping_must_be_a_positive_duration(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mendersim.cli", "serve", "--deviceconnect-ping", "0s"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mendersim: error: --deviceconnect-ping: must be longer than zero"
    ]
