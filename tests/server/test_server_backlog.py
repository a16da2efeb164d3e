"""The embedded server's accept queue holds a burst of connections far beyond aiohttp's
default backlog of 128: every one is established and answered, none reset."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import time
from urllib.parse import urlsplit

import pytest

from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

BURST = 600  # at once, more than 4 x aiohttp's default backlog
REQUEST = b"GET /_mendersim/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _connect_all(address: tuple[str, int], within: float) -> list[socket.socket]:
    """Start BURST connections at once; those the kernel established within `within` s."""
    selector = selectors.DefaultSelector()
    pending = []
    for _ in range(BURST):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(address)
        selector.register(sock, selectors.EVENT_WRITE)
        pending.append(sock)
    established = []
    deadline = time.monotonic() + within
    while len(established) < BURST and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            selector.unregister(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established.append(sock)
    selector.close()
    for sock in pending:
        if sock not in established:
            sock.close()
    return established


def _answer(sock: socket.socket) -> bytes:
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(REQUEST)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


def test_a_burst_of_connections_beyond_128_is_held_and_answered():
    with running_server() as server:
        parts = urlsplit(server.url)
        # Stopped, the server accepts nothing: only its accept queue holds the burst.
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            established = _connect_all((parts.hostname, parts.port), within=2.0)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        answers = [_answer(sock) for sock in established]
    assert len(established) == BURST  # needs net.core.somaxconn >= BURST (4096 since Linux 5.4)
    assert all(answer.startswith(b"HTTP/1.1 401 ") for answer in answers), answers[0][:80]
