"""The gevent transport against a real HTTP server on 127.0.0.1."""

import types

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from mendersim.device import steps
from mendersim.device.transport import TransportError
from mendersim.harness import measures, stats
from mendersim.harness.transport import GeventTransport

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
    if path == "/artifact":
        start_response("200 OK", [("Content-Length", str(len(PAYLOAD)))])
        return [PAYLOAD]
    start_response("200 OK", [("Content-Length", str(len(peer))), ("X-Test", "yes")])
    return [peer]


@pytest.fixture
def server():
    srv = WSGIServer(("127.0.0.1", 0), _app, log=None)
    srv.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.stop()


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


def test_fresh_uses_a_new_connection_per_exchange(server, recorded):
    env, entries = recorded
    transport = GeventTransport(env, server, profile="automotive")
    first = transport.request(steps.INVENTORY, "PUT", "/peer", body=b"[]")
    second = transport.request(steps.INVENTORY, "PUT", "/peer", body=b"[]")
    assert first.status == 200 and first.header("x-test") == "yes"
    assert first.body != second.body  # two client ports: two connections
    entry = entries[0]
    assert (entry["request_type"], entry["name"], entry["exception"]) == ("PUT", "inventory", None)
    assert entry["context"] == {"profile": "automotive"}
    assert entry["response_length"] == len(first.body)


def test_keepalive_reuses_one_connection(server, recorded):
    env, _ = recorded
    transport = GeventTransport(env, server, profile="p", keepalive=True)
    bodies = {transport.request(steps.NEXT, "GET", "/peer").body for _ in range(3)}
    transport.close()
    assert len(bodies) == 1


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
