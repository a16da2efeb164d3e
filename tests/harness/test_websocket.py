"""The harness's deviceconnect websocket on gevent, against the embedded server and a server
that accepts the upgrade and then stays silent."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import gevent
import pytest
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from mendersim.harness.worker.transport import GeventTransport
from mendersim.server.process import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_testkit import SimDevice

pytestmark = pytest.mark.integration

CONNECT = "/api/devices/v1/deviceconnect/connect"


class _Events:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def fire(self, **kwargs) -> None:
        self.entries.append(kwargs)

    def named(self, name: str) -> list[dict]:
        return [e for e in self.entries if e["name"] == name]


@pytest.fixture
def recorded():
    events = _Events()
    return types.SimpleNamespace(events=types.SimpleNamespace(request=events)), events


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        gevent.sleep(0.02)


def test_pings_a_refusal_and_an_outage_against_the_embedded_server(recorded):
    environment, events = recorded
    with running_server() as server:
        device = SimDevice(server.url, None)
        assert device.authenticate().status_code == 200
        transport = GeventTransport(environment, server.url, profile="automotive")
        closed: list[str] = []
        down = [False]
        link = transport.websocket(
            CONNECT,
            headers=device.headers(),
            on_closed=closed.append,
            ping_every=0.2,
            deadline=0.5,
            link_down=lambda: down[0],
        )
        _until(lambda: len(events.named("deviceconnect ping")) >= 3)
        assert all(e["exception"] is None for e in events.named("deviceconnect ping"))
        assert server.management().mendersim_status()["deviceconnect"]["connected"] == 1
        down[0] = True  # the device's network goes into an outage
        _until(lambda: closed == ["offline"])
        (drop,) = events.named("deviceconnect drop")
        assert str(drop["exception"]) == "network is unreachable"
        assert drop["request_type"] == "WS" and drop["context"] == {"profile": "automotive"}
        _until(lambda: server.management().mendersim_status()["deviceconnect"]["connected"] == 0)

        refused = transport.websocket(
            CONNECT,
            headers={"Authorization": "Bearer expired"},
            on_closed=closed.append,
            ping_every=0.2,
            deadline=0.5,
        )
        assert refused.status == 401 and b'"error": "unauthorized"' in refused.body
        failed = events.named("deviceconnect connect")[-1]
        assert str(failed["exception"]) == "HTTP 401"
        link.close()  # already closed: no second callback
        assert closed == ["offline"]


def _silent_server() -> StreamServer:
    """Accepts the upgrade, then neither reads nor answers anything."""

    def handle(sock, _address) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            data = sock.recv(4096)
            if not data:
                return
            ws.receive_data(data)
            if any(isinstance(event, Request) for event in ws.events()):
                sock.sendall(ws.send(AcceptConnection()))
                break
        gevent.sleep(30)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    return server


def test_a_link_whose_server_stays_silent_is_dropped_at_the_read_deadline(recorded):
    environment, events = recorded
    server = _silent_server()
    try:
        transport = GeventTransport(
            environment, f"http://127.0.0.1:{server.server_port}", profile="p"
        )
        closed: list[str] = []
        opened = time.monotonic()
        transport.websocket(
            CONNECT,
            headers={"Authorization": "Bearer t"},
            on_closed=closed.append,
            ping_every=0.3,
            deadline=1.0,
        )
        _until(lambda: closed == ["timeout"])
        assert time.monotonic() - opened >= 1.0  # not before the deadline
        (ping,) = events.named("deviceconnect ping")
        assert str(ping["exception"]) == "no pong within 1 s"
        (drop,) = events.named("deviceconnect drop")
        assert str(drop["exception"]) == "nothing heard for 1 s"
    finally:
        server.stop()
