"""Download pacing against a real local HTTP server with a real clock."""

from __future__ import annotations

import http.server
import threading

import pytest
from device_http import RealClock, RequestsTransport

from mendersim.device.devlog import DeploymentLog
from mendersim.device.download import Download

PAYLOAD = bytes(range(256)) * 2048  # 512 KiB


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/artifact"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kbps", [2000, 4000])
def test_measured_rate_is_within_five_percent_of_the_configured_one(file_server, kbps):
    clock = RealClock()
    download = Download(
        RequestsTransport(file_server),
        clock,
        file_server,
        DeploymentLog(),
        device_id="d",
        deployment_id="x",
        rate_kbps=kbps,
        time_scale=1.0,
    )
    started = clock.now()
    received = sum(len(chunk) for chunk in download.chunks())
    elapsed = clock.now() - started
    assert received == len(PAYLOAD)
    measured_kbps = received * 8 / elapsed / 1000
    assert measured_kbps == pytest.approx(kbps, rel=0.05)
