"""What the chaos tests share: a fleet whose devices keep finishing deployments, a server whose
records say when each finished, and the comparison of those records with the seed store."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from mendersim.artifact.writer import write_artifact
from mendersim.mender_api.management import ManagementClient
from mendersim.server.process import free_port

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "locustfiles" / "fleet.py"
TIME_SCALE = str(1 / 1800)  # a 1800 s poll takes a second; installs and reboots a fraction
DEVICE_TYPES = ("tcu-imx8mm", "ivi-rcar-h3", "gateway-s32g")  # the automotive profile's


def seed(tmp: Path, count: int, *, name: str = "fleet", db_dir: Path | None = None) -> Path:
    fleet = tmp / f"{name}.yaml"
    fleet.write_text(
        "server_url: http://127.0.0.1:1\npoll_interval: 1800\nseed: 13\n"
        f"groups:\n  - profile: automotive\n    count: {count}\n"
    )
    db = (db_dir or tmp) / f"{name}.db"
    command = [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)]
    subprocess.run([*command, "--quiet"], check=True, timeout=120, cwd=tmp)
    return db


def simulator_log(log: Path) -> Path:
    """Where the process whose console goes to `log` writes the simulator's decisions."""
    return log.with_suffix(".simulator.log")


def locust(*args: str, log: Path) -> subprocess.Popen:
    """A Locust process of the fleet locustfile, console to `log`."""
    env = {**os.environ, "MENDERSIM_LOG_FILE": str(simulator_log(log))}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env=env,
        )


def run_args(db: Path, users: int, seconds: float, host: str | None) -> list[str]:
    args = ["--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s"]
    args += ["--mendersim-time-scale", TIME_SCALE, "--mendersim-db", str(db)]
    return [*args, "--host", host] if host else args


def master(
    db: Path, users: int, seconds: float, host: str, log: Path, *, workers: int = 1
) -> tuple[subprocess.Popen, str]:
    """A headless Locust master waiting for `workers` workers; returns it and its port."""
    port = str(free_port())
    process = locust(
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--expect-workers", str(workers), *run_args(db, users, seconds, host), log=log,
    )  # fmt: skip
    return process, port


@dataclass
class Server:
    """`mendersim serve` on a fixed port, so that a restart answers at the same address."""

    port: int
    token: str
    db: Path | None
    log: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def management(self) -> ManagementClient:
        return ManagementClient(self.url, self.token)

    def start(self, *, with_db: bool = True, extra: tuple[str, ...] = ()) -> None:
        command = [sys.executable, "-m", "mendersim.cli", "serve", "--port", str(self.port)]
        if with_db and self.db is not None:
            command += ["--db", str(self.db), "--db-flush-interval", "100ms"]
        env = {**os.environ, "MENDERSIM_MGMT_TOKEN": self.token}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*command, *extra], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/_mendersim/status", headers=self._auth(), timeout=1):
                    return
            except requests.RequestException:
                pass
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.05)
        raise AssertionError(f"server on {self.url} did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(20)

    def status(self) -> dict:
        return requests.get(f"{self.url}/_mendersim/status", headers=self._auth(), timeout=5).json()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def server(tmp: Path, *, with_db: bool = True, extra: tuple[str, ...] = ()) -> Iterator[Server]:
    handle = Server(free_port(), os.urandom(12).hex(), tmp / "server.db", tmp / "server.log")
    handle.start(with_db=with_db, extra=extra)
    try:
        yield handle
    finally:
        handle.stop()


class Deployer:
    """Creates a deployment to every accepted device every `every` seconds, so that deployments
    keep finishing while faults strike."""

    def __init__(self, srv: Server, tmp: Path, *, every: float = 2.0, count: int = 30) -> None:
        self._srv = srv
        self._tmp = tmp
        self._every = every
        self._count = count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.created: list[str] = []

    def start(self, devices: int) -> None:
        api = self._srv.management()
        deadline = time.monotonic() + 60
        while api.count_devices("accepted") < devices:
            assert time.monotonic() < deadline, "the fleet was not accepted"
            time.sleep(0.2)
        self._thread.start()

    def _run(self) -> None:
        api = self._srv.management()
        for i in range(self._count):
            if self._stop.is_set():
                return
            artifact = self._tmp / f"fw-{i}.mender"
            if not artifact.exists():
                write_artifact(
                    artifact, name=f"fw-{i}", device_types=list(DEVICE_TYPES), payload_size=2048
                )
            try:
                api.upload_artifact(artifact)
                self.created.append(api.create_deployment(f"d{i}", f"fw-{i}", all_devices=True))
            except Exception:  # the server is being killed by the test: try the next one
                pass
            self._stop.wait(self._every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)


def _device_reported(dd: dict) -> bool:
    """A finish the device reported (and so must have in its history): a success, or a failure
    with its log. The server ends others by itself (already-installed or noartifact when the
    device polls, a failure when a restarted device polls mid-deployment with other data)."""
    if dd["finished"] is None:
        return False
    return dd["status"] == "success" or (dd["status"] == "failure" and bool(dd["log"]))


@contextmanager
def deploying(
    srv: Server, tmp: Path, devices: int, processes: list[subprocess.Popen], *, count: int = 30
) -> Iterator[Deployer]:
    """Deployments every 1.5 s once the fleet is accepted; at the end the deployer stops and
    every process in `processes` (the list may grow meanwhile) still running is killed."""
    deployer = Deployer(srv, tmp, every=1.5, count=count)
    try:
        deployer.start(devices)
        yield deployer
    finally:
        deployer.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()


def server_finished(db: Path) -> dict[tuple[str, str], float]:
    """(identity as the store keeps it, deployment id) → finish time of each deployment the
    devices reported finished, from the server's state file."""
    # read-write: a SIGKILLed server may leave a hot journal that SQLite must roll back first
    conn = sqlite3.connect(db, timeout=10)
    try:
        identity = {
            json.loads(data)["id"]: json.loads(data)["id_data"]
            for (data,) in conn.execute("SELECT data FROM devices")
        }
        finished = {}
        for (data,) in conn.execute("SELECT data FROM device_deployments"):
            dd = json.loads(data)
            if _device_reported(dd):
                finished[(identity[dd["device_id"]], dd["deployment_id"])] = dd["finished"]
        return finished
    finally:
        conn.close()


def store_statuses(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT status, COUNT(*) FROM acceptance GROUP BY status"))
    finally:
        conn.close()


def victoria_metrics(data_dir: Path):
    """The influx tests' VictoriaMetrics starter (installed by ci/install_tsdb.sh if missing)."""
    spec = importlib.util.spec_from_file_location("tsdb", REPO / "tests" / "influx" / "tsdb.py")
    tsdb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tsdb)
    return tsdb.victoria_metrics(data_dir)


def store_history(db: Path) -> list[tuple[str, str]]:
    """(identity, deployment id) of every finished deployment in the seed store, repeats kept."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT d.id_data, h.deployment_id FROM deployments h"
            " JOIN devices d ON d.device_id = h.device_id WHERE h.finished IS NOT NULL"
        )
        return [tuple(row) for row in rows]
    finally:
        conn.close()


def first_finish_of_repeats(db: Path) -> list[float]:
    """When each (device, deployment) pair stored more than once was first finished."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT MIN(finished) FROM deployments WHERE finished IS NOT NULL"
            " GROUP BY device_id, deployment_id HAVING COUNT(*) > 1"
        )
        return [row[0] for row in rows]
    finally:
        conn.close()


@dataclass
class Comparison:
    server_finished: int  # device deployments the server recorded as finished
    before_cutoff: int  # of those, finished at least 2 s before the fault
    missing_before_cutoff: int  # of those, absent from the store: must be 0
    lost_in_window: int  # finished in the last 2 s before the fault and absent from the store
    repeated: int  # store rows of a (device, deployment) pair seen more than once: must be 0
    stored: int
    missing: list[tuple[str, str, float]]  # (identity, deployment, finished) absent from the store


def compare(server_db: Path, store_db: Path, fault_at: float | None) -> Comparison:
    finished = server_finished(server_db)
    history = store_history(store_db)
    stored = set(history)
    cutoff = (fault_at - 2.0) if fault_at is not None else float("inf")
    before = {k for k, t in finished.items() if t <= cutoff}
    window = {k for k, t in finished.items() if t > cutoff}
    return Comparison(
        server_finished=len(finished),
        before_cutoff=len(before),
        missing_before_cutoff=len(before - stored),
        lost_in_window=len(window - stored),
        repeated=len(history) - len(stored),
        stored=len(history),
        missing=sorted((*k, finished[k]) for k in set(finished) - stored),
    )


def wait_exit(process: subprocess.Popen, timeout: float, log: Path) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{log.name} did not exit: {log.read_text()[-3000:]}") from None
