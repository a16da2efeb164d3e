"""Start real time-series servers on free 127.0.0.1 ports with throw-away data directories:
VictoriaMetrics (speaks the InfluxDB v2 write API) and InfluxDB 1.x (the InfluxQL engine).
Missing binaries are installed by ci/install_tsdb.sh, so nothing is ever skipped for them."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "ci" / "install_tsdb.sh"
READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary(*names: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    subprocess.run(["bash", str(INSTALL)], check=True, timeout=600)
    for name in names:
        if found := shutil.which(name):
            return found
    raise RuntimeError(f"{INSTALL} did not install any of {names}")


@contextlib.contextmanager
def victoria_metrics(data_dir: Path) -> Iterator[str]:
    """Yield the base URL of a running VictoriaMetrics."""
    port = free_port()
    command = [
        binary("victoria-metrics", "victoria-metrics-prod"),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data_dir}",
        "-search.disableCache",
        "-search.latencyOffset=0s",
    ]
    url = f"http://127.0.0.1:{port}"
    with _running(command, data_dir / "victoria-metrics.log", f"{url}/health"):
        yield url


@contextlib.contextmanager
def influxdb1(data_dir: Path) -> Iterator[str]:
    """Yield the base URL of a running InfluxDB 1.x with its own generated config."""
    port, rpc_port = free_port(), free_port()
    config = data_dir / "influxdb.conf"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc_port}"\n'
        f'[meta]\n  dir = "{data_dir}/meta"\n'
        f'[data]\n  dir = "{data_dir}/data"\n  wal-dir = "{data_dir}/wal"\n'
        "  query-log-enabled = false\n"
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
    )
    url = f"http://127.0.0.1:{port}"
    with _running(
        [binary("influxd"), "-config", str(config)], data_dir / "influxd.log", f"{url}/ping"
    ):
        yield url


@contextlib.contextmanager
def _running(command: list[str], log: Path, ready_url: str) -> Iterator[None]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(ready_url, timeout=1).status_code < 300:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} not ready after {READY_TIMEOUT_S}s")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
