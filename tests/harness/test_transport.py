"""The gevent transport against a real HTTP server on 127.0.0.1, which counts the TCP
connections it accepts and how many are open: the connection policies as the server sees them."""

import time
import types

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from mendersim.device import steps
from mendersim.device.transport import TransportError
from mendersim.harness.reporting import measures, stats
from mendersim.harness.worker.transport import GeventTransport

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    peer = f"{environ['REMOTE_ADDR']}:{environ['REMOTE_PORT']}".encode()
    if path == "/status/204":
        start_response("204 No Content", [])
        return [b""]
    if path == "/status/401":
        start_response("401 Unauthorized", [("Content-Length", "0")])
        return [b""]
    if path == "/status/500":
        start_response("500 Internal Server Error", [("Content-Length", "4")])
        return [b"oops"]
    if path in ("/slow", "/peer-slow"):
        gevent.sleep(0.3)
    if path == "/artifact":
        start_response("200 OK", [("Content-Length", str(len(PAYLOAD)))])
        return [PAYLOAD]
    start_response("200 OK", [("Content-Length", str(len(peer))), ("X-Test", "yes")])
    return [peer]


class CountingServer(WSGIServer):
    """A WSGI server that counts TCP connections: accepted in all, and open now."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _app, log=None)
        self.accepted = 0
        self.open = 0

    def handle(self, sock, address):
        self.accepted += 1
        self.open += 1
        try:
            super().handle(sock, address)  # returns when the connection is closed
        finally:
            self.open -= 1

    def wait_open(self, count: int, within: float = 5.0) -> int:
        """Open connections once they reach `count` (or what they are after `within` s)."""
        deadline = time.monotonic() + within
        while self.open != count and time.monotonic() < deadline:
            gevent.sleep(0.01)
        return self.open


@pytest.fixture
def counting():
    srv = CountingServer()
    srv.start()
    srv.url = f"http://127.0.0.1:{srv.server_port}"
    yield srv
    srv.stop()


@pytest.fixture
def server(counting):
    return counting.url


class _RequestEvent:
    """Stands for Locust's `events.request`: keeps what the transport fires."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def fire(self, **kwargs) -> None:
        self.entries.append(kwargs)


@pytest.fixture
def recorded():
    event = _RequestEvent()
    return types.SimpleNamespace(events=types.SimpleNamespace(request=event)), event.entries


def test_fresh_opens_a_new_connection_per_exchange_and_keeps_none(counting, recorded):
    env, entries = recorded
    transport = GeventTransport(env, counting.url, profile="automotive")
    peers = set()
    for done in range(1, 4):
        answer = transport.request(steps.INVENTORY, "PUT", "/peer", body=b"[]")
        peers.add(answer.body)
        assert counting.wait_open(0) == 0  # closed after the exchange, before the next
        assert counting.accepted == done
    assert len(peers) == 3  # three client ports
    assert answer.status == 200 and answer.header("x-test") == "yes"
    entry = entries[0]
    assert (entry["request_type"], entry["name"], entry["exception"]) == ("PUT", "inventory", None)
    assert entry["context"] == {"profile": "automotive"}
    assert entry["response_length"] == len(answer.body)


def test_fresh_devices_in_flight_together_each_have_their_own_connection(counting, recorded):
    env, _ = recorded
    shared = GeventTransport(env, counting.url, profile="p")  # as the pool gives every device
    assert not shared.keeps_connections
    calls = [gevent.spawn(shared.request, steps.NEXT, "GET", "/peer-slow") for _ in range(20)]
    gevent.joinall(calls, timeout=10, raise_error=True)
    assert {call.value.status for call in calls} == {200}
    assert len({call.value.body for call in calls}) == 20  # twenty client ports
    assert counting.accepted == 20
    assert counting.wait_open(0) == 0


def test_keepalive_reuses_one_connection_within_the_idle_timeout(counting, recorded):
    env, _ = recorded
    transport = GeventTransport(env, counting.url, profile="p", idle_timeout=30.0)
    assert transport.keeps_connections  # the pool gives each such device its own
    for _ in range(3):
        transport.request(steps.NEXT, "GET", "/peer")
        gevent.sleep(0.05)
    assert (counting.accepted, counting.open) == (1, 1)
    transport.close()  # the device leaves the run
    assert counting.wait_open(0) == 0


def test_keepalive_holds_no_connection_beyond_the_idle_timeout(counting, recorded):
    env, _ = recorded
    transport = GeventTransport(env, counting.url, profile="p", idle_timeout=0.3)
    first = transport.request(steps.NEXT, "GET", "/peer").body
    assert counting.open == 1
    assert counting.wait_open(0) == 0  # the reaper closed it while the device was idle
    second = transport.request(steps.NEXT, "GET", "/peer").body
    assert counting.accepted == 2 and first != second
    assert counting.wait_open(0) == 0


def test_keepalive_used_again_in_time_stays_open_past_its_first_deadline(counting, recorded):
    env, _ = recorded
    transport = GeventTransport(env, counting.url, profile="p", idle_timeout=0.5)
    for _ in range(4):  # 1.2 s in all, never idle for 0.5 s
        transport.request(steps.NEXT, "GET", "/peer")
        gevent.sleep(0.3)
    assert (counting.accepted, counting.open) == (1, 1)
    assert counting.wait_open(0) == 0


def test_failures_follow_the_protocol_rule(server, recorded):
    env, entries = recorded
    transport = GeventTransport(env, server, profile="p")
    assert transport.request(steps.NEXT, "GET", "/status/204").status == 204
    assert transport.request(steps.AUTH, "POST", "/status/401", body=b"{}").status == 401
    assert transport.request(steps.INVENTORY, "PUT", "/status/500", body=b"[]").status == 500
    by_name = {(e["request_type"], e["name"]): e for e in entries}
    assert by_name[("GET", steps.NEXT)]["exception"] is None
    assert by_name[("POST", steps.AUTH)]["exception"] is None
    assert (stats.DEVICE, stats.AUTH_NOT_ACCEPTED) not in by_name  # not a request
    entry = measures.of(env).stats.entries[(stats.AUTH_NOT_ACCEPTED, stats.DEVICE)]
    assert (entry.num_requests, entry.max_response_time) == (1, 0)
    assert str(by_name[("PUT", steps.INVENTORY)]["exception"]) == "HTTP 500"


def test_connection_refused_is_a_transport_error(recorded):
    env, entries = recorded
    sock = gevent.socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    transport = GeventTransport(env, f"http://127.0.0.1:{port}", profile="p")
    with pytest.raises(TransportError) as caught:
        transport.request(steps.AUTH, "POST", "/x", body=b"{}")
    assert caught.value.kind == "connection_refused"
    assert entries[0]["name"] == steps.AUTH
    assert str(entries[0]["exception"]).startswith("connection_refused")


def test_download_is_one_entry_with_its_bytes(server, recorded):
    env, entries = recorded
    transport = GeventTransport(env, "http://127.0.0.1:1", profile="p")  # absolute URL wins
    with transport.stream(steps.DOWNLOAD, f"{server}/artifact") as download:
        assert download.status == 200
        data = b"".join(download.iter_chunks(8192))
    assert data == PAYLOAD
    assert len(entries) == 1
    assert entries[0]["name"] == steps.DOWNLOAD
    assert entries[0]["response_length"] == len(PAYLOAD)
    assert entries[0]["exception"] is None
