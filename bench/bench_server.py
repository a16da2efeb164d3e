"""Embedded server throughput: per-endpoint requests/s, and poll capacity against Locust.

The server runs pinned to core 0; wrk (with a Lua script adding the Authorization header and
cycling through many devices) runs pinned to core 1 and measures what the server can answer.
A bare Locust FastHttpUser worker, also pinned to core 1, measures how fast one Locust worker
sends the same polls. Both are measured in the same run; the target is capacity / send rate
of at least 1.5.

    .venv/bin/python bench/bench_server.py [--seconds 10] [--devices 50]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jwt
import requests

from mendersim.artifact.writer import write_artifact
from mendersim.fleet import keys
from mendersim.server.process import ServerHandle, running_server

SERVER_CORE = 0
LOAD_CORE = 1
KEY_TYPES = ("rsa2048", "rsa3072", "ecdsa-p256", "ed25519")
AUTH = "/api/devices/v1/authentication/auth_requests"
INVENTORY = "/api/devices/v1/inventory/device/attributes"
NEXT = "/api/devices/v1/deployments/device/deployments/next?artifact_name=old&device_type=bench"
STATUS = "/api/devices/v1/deployments/device/deployments/{id}/status"
TARGET_RATIO = 1.5

LOCUSTFILE = """
import itertools, os
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

TOKENS = itertools.cycle(os.environ["BENCH_TOKENS"].split(","))
PATH = os.environ["BENCH_PATH"]

class Poller(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.headers = {"Authorization": "Bearer " + next(TOKENS)}

    @task
    def poll(self):
        self.client.get(PATH, headers=self.headers, name="next")
"""


def lua_literal(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal here


def wrk_script(requests_: list[tuple[str, str, dict[str, str], str | None]]) -> str:
    """A wrk script cycling through prepared (method, path, headers, body) requests."""
    entries = []
    for method, path, headers, body in requests_:
        header_items = ", ".join(
            f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in headers.items()
        )
        body_literal = lua_literal(body) if body is not None else "nil"
        entries.append(
            f"wrk.format({lua_literal(method)}, {lua_literal(path)}, {{{header_items}}}, "
            f"{body_literal})"
        )
    return (
        "local reqs = {}\n"
        "function init(args)\n"
        + "".join(f"  reqs[{i + 1}] = {e}\n" for i, e in enumerate(entries))
        + "end\n"
        "local n = 0\n"
        "function request()\n"
        "  n = n % #reqs + 1\n"
        "  return reqs[n]\n"
        "end\n"
    )


def run_wrk(url: str, script: str, seconds: int, connections: int = 50) -> tuple[float, int]:
    """(requests/s, answers that were not 2xx/3xx)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            [
                "taskset",
                "-c",
                str(LOAD_CORE),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", result.stdout).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    return rate, int(errors.group(1)) if errors else 0


def authenticate(url: str, key: keys.PrivateKey, identity: dict) -> tuple[str, str, str]:
    """(body, signature, token) of one accepted device."""
    body = json.dumps(
        {"id_data": json.dumps(identity, sort_keys=True), "pubkey": keys.public_pem(key)}
    )
    signature = keys.sign_b64(key, body.encode())
    response = requests.post(url + AUTH, data=body, headers={"X-MEN-Signature": signature})
    response.raise_for_status()
    return body, signature, response.text


def locust_rate(url: str, tokens: list[str], seconds: int) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="bench-locust-"))
    try:
        (workdir / "locustfile.py").write_text(LOCUSTFILE)
        env = {**os.environ, "BENCH_TOKENS": ",".join(tokens), "BENCH_PATH": NEXT}
        subprocess.run(
            [
                "taskset",
                "-c",
                str(LOAD_CORE),
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(workdir / "locustfile.py"),
                "--headless",
                "-u",
                "50",
                "-r",
                "50",
                "-t",
                f"{seconds}s",
                "--host",
                url,
                "--csv",
                str(workdir / "run"),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 90,
            env=env,
            cwd=workdir,
            check=False,
        )
        with open(workdir / "run_stats.csv") as stats:
            row = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
        return float(row["Requests/s"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per wrk measurement")
    parser.add_argument("--locust-seconds", type=int, default=20)
    parser.add_argument("--devices", type=int, default=50, help="devices per key type")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("needs two cores", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp, running_server(data_dir=Path(tmp)) as server:
        os.sched_setaffinity(server.process.pid, {SERVER_CORE})
        return measure(server, Path(tmp), args)


def measure(server: ServerHandle, tmp: Path, args: argparse.Namespace) -> int:
    url = server.url
    api = server.management()
    results: dict[str, float] = {}
    errors: dict[str, int] = {}
    devices: list[tuple[str, str, str]] = []
    for key_type in KEY_TYPES:
        auth_requests = []
        for index in range(args.devices):
            key = keys.generate(key_type)
            body, signature, token = authenticate(url, key, {"mac": f"{key_type}-{index}"})
            devices.append((body, signature, token))
            auth_requests.append(
                (
                    "POST",
                    AUTH,
                    {"X-MEN-Signature": signature, "Content-Type": "application/json"},
                    body,
                )
            )
        rate, codes = run_wrk(url, wrk_script(auth_requests), args.seconds)
        results[f"auth {key_type}"], errors[f"auth {key_type}"] = rate, codes

    tokens = [token for _, _, token in devices]
    bearer = [{"Authorization": f"Bearer {t}"} for t in tokens]
    inventory = json.dumps(
        [
            {"name": "device_type", "value": "bench"},
            {"name": "artifact_name", "value": "old"},
            {"name": "kernel", "value": "6.1.0"},
        ]
    )
    script = wrk_script(
        [("PUT", INVENTORY, {**h, "Content-Type": "application/json"}, inventory) for h in bearer]
    )
    results["inventory PUT"], errors["inventory PUT"] = run_wrk(url, script, args.seconds)
    script = wrk_script([("GET", NEXT, h, None) for h in bearer])
    results["next (204)"], errors["next (204)"] = run_wrk(url, script, args.seconds)

    write_artifact(
        tmp / "bench.mender", name="bench-2", device_types=["bench"], payload_size=1024 * 1024
    )
    api.upload_artifact(tmp / "bench.mender")
    ids = [jwt.decode(t, options={"verify_signature": False})["sub"] for t in tokens]
    deployment_id = api.create_deployment("bench", "bench-2", devices=ids)
    uri = None
    for headers in bearer:
        answer = requests.get(url + NEXT, headers=headers)
        uri = answer.json()["artifact"]["source"]["uri"]
    status_body = json.dumps({"status": "downloading"})
    script = wrk_script(
        [
            (
                "PUT",
                STATUS.format(id=deployment_id),
                {**h, "Content-Type": "application/json"},
                status_body,
            )
            for h in bearer
        ]
    )
    results["status PUT"], errors["status PUT"] = run_wrk(url, script, args.seconds)
    path = uri.split("/", 3)[3]
    script = wrk_script([("GET", "/" + path, {}, None)])
    results["download"], errors["download"] = run_wrk(url, script, args.seconds, connections=10)
    api.abort_deployment(deployment_id)

    script = wrk_script([("GET", NEXT, h, None) for h in bearer])
    capacity, _ = run_wrk(url, script, args.seconds)
    sent = locust_rate(url, tokens, args.locust_seconds)

    print(f"{'endpoint':<22}{'requests/s':>12}{'non-2xx':>10}")
    for name, rate in results.items():
        print(f"{name:<22}{rate:>12.0f}{errors[name]:>10}")
    size = (tmp / "bench.mender").stat().st_size
    print(f"download: {size} bytes per artifact, {results['download'] * size / 2**20:.0f} MiB/s")
    print(f"next capacity (wrk, server on core {SERVER_CORE}): {capacity:.0f} requests/s")
    print(f"Locust FastHttpUser send rate (core {LOAD_CORE}): {sent:.0f} requests/s")
    ratio = capacity / sent if sent else float("inf")
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"ratio: {ratio:.2f} ({verdict} the {TARGET_RATIO}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
