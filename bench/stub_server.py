"""A stub Mender server for the scale benchmarks: nginx answering the device API with fixed answers.

At a million devices the embedded server (Python, one core) cannot serve the first poll interval:
its answers fall minutes behind and what the benchmark then measures is that backlog. This stub
costs a few microseconds per request, so the figures are the load generator's. It accepts every
authentication with a token of a real Mender token's size (an RS256 JWT, about 700 bytes), takes
every inventory and has no deployment; it keeps no state, so it cannot say whom it accepted: the
benchmark compares the store with the authentications the devices were answered instead.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mendersim.server.process import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# header.claims.signature of a 2048-bit RS256 token: 342 base64url characters of signature
TOKEN = ".".join(
    base64.urlsafe_b64encode(part).decode().rstrip("=")
    for part in (
        b'{"alg":"RS256","typ":"JWT"}',
        b'{"exp":1796280000,"iat":1795675200,"jti":"5f3c8a0e-3b1e-4c5e-9d61-7e2b9a4d1c20",'
        b'"iss":"Mender","mender.device":true,"mender.plan":"enterprise",'
        b'"mender.tenant":"5f3c8a0e3b1e4c5e9d617e2b","sub":"0d5e6f70-8192-4a3b-bc4d-5e6f708192a3"}',
        bytes(256),
    )
)


def _config(folder: Path, port: int) -> str:
    return f"""
worker_processes 1;
worker_rlimit_nofile 20000;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
daemon off;
events {{ worker_connections 19000; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    keepalive_timeout 90s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /api/devices/v1/authentication/auth_requests {{
            default_type application/jwt;
            return 200 "{TOKEN}";
        }}
        location /api/devices/v1/inventory/ {{ return 200; }}
        location /api/devices/ {{ return 204; }}
        location / {{ return 404; }}
    }}
}}
"""


@dataclass
class Stub:
    url: str
    process: subprocess.Popen


@contextmanager
def running_stub() -> Iterator[Stub]:
    with tempfile.TemporaryDirectory(prefix="mendersim-stub-") as name:
        folder = Path(name)
        port = free_port()
        config = folder / "nginx.conf"
        config.write_text(_config(folder, port))
        process = subprocess.Popen([NGINX, "-c", str(config), "-p", str(folder)])
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"nginx did not listen on {port}") from None
                    time.sleep(0.05)
            yield Stub(f"http://127.0.0.1:{port}", process)
        finally:
            process.terminate()
            process.wait(timeout=10)
