"""Throughput: one worker's device poll rate against bare Locust FastHttpUser, same run.

Both phases run against the same embedded server (pinned to one core) from one Locust process
(pinned to the other), one after the other in this run:
1. bare: FastHttpUsers POST the v2 `deployments/next` with one device's token, no wait;
2. devices: the same number of simulated devices at the fastest pace (time scale 1e-6, so the
   30-minute poll interval is 1.8 ms) with kept connections, polling the same endpoint;
3. the same devices with a fresh connection per exchange (the default policy), for its cost.
Target: devices' `deployments/next` requests/s >= 0.6 x bare requests/s.

    python bench/bench_throughput.py --users 50 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import requests
from fleet_bench import SERVER_CPU, headless, locust, pin, seeded_fleet, stats_row, wait

from mendersim.device.auth import AUTH_PATH, auth_request
from mendersim.device.engine import NEXT_V2
from mendersim.fleet.store import SeedStore
from mendersim.server.process import running_server

BARE_LOCUSTFILE = """
import os
from locust import FastHttpUser, constant, task

HEADERS = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"],
           "Content-Type": "application/json"}
BODY = os.environ["BENCH_BODY"].encode()


class Bare(FastHttpUser):
    wait_time = constant(0)

    @task
    def poll(self):
        self.client.post(os.environ["BENCH_PATH"], data=BODY, headers=HEADERS,
                         name="deployments/next")
"""


def device_token(url: str, db: Path) -> tuple[str, str]:
    """A token and a `deployments/next` body of the fleet's first device."""
    with SeedStore.open(db) as store:
        (record,) = store.load_devices(limit=1)
    body, headers = auth_request(record, "")
    answer = requests.post(url + AUTH_PATH, data=body, headers=headers, timeout=10)
    answer.raise_for_status()
    provides = {"artifact_name": record.artifact_name, "device_type": record.device_type}
    poll = {"device_provides": provides, "update_control_map": False}
    return answer.text.strip(), json.dumps(poll, separators=(",", ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    source = seeded_fleet(max(args.users, 200))
    with tempfile.TemporaryDirectory(prefix="mendersim-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "fleet.db"
        shutil.copyfile(source, db)
        bare_file = tmp / "bare.py"
        bare_file.write_text(BARE_LOCUSTFILE)
        with running_server("--acceptance", "auto") as server:
            pin(server.process.pid, SERVER_CPU)
            token, body = device_token(server.url, db)
            os.environ.update(BENCH_TOKEN=token, BENCH_BODY=body, BENCH_PATH=NEXT_V2)
            common = headless(args.users, args.seconds, server.url)
            bare = locust(
                [*common, "--csv", str(tmp / "bare")], tmp / "bare.log", locustfile=bare_file
            )
            wait(bare, tmp / "bare.log", args.seconds + 60)
            devices = locust(
                [
                    *common,
                    "--csv",
                    str(tmp / "devices"),
                    "--mendersim-db",
                    str(db),
                    "--mendersim-time-scale",
                    "1e-6",
                    "--mendersim-connection",
                    "keepalive",
                    "--mendersim-idle-timeout",
                    "1e9",  # kept for the whole run even at time scale 1e-6
                ],
                tmp / "devices.log",
            )
            wait(devices, tmp / "devices.log", args.seconds + 60)
            fresh = locust(
                [
                    *common,
                    "--csv",
                    str(tmp / "fresh"),
                    "--mendersim-db",
                    str(db),
                    "--mendersim-time-scale",
                    "1e-6",
                    "--mendersim-connection",
                    "fresh",
                ],
                tmp / "fresh.log",
            )
            wait(fresh, tmp / "fresh.log", args.seconds + 60)
        bare_rps = float(stats_row(tmp / "bare", "POST", "deployments/next")["Requests/s"])
        device_rps = float(stats_row(tmp / "devices", "POST", "deployments/next")["Requests/s"])
        lag = stats_row(tmp / "devices", "HARNESS", "scheduler lag p99")
        fresh_rps = float(stats_row(tmp / "fresh", "POST", "deployments/next")["Requests/s"])
    ratio = device_rps / bare_rps
    print(f"users: {args.users}, {args.seconds} s per phase")
    print(f"bare FastHttpUser deployments/next: {bare_rps:.0f} req/s")
    print(f"devices (keepalive, time scale 1e-6) deployments/next: {device_rps:.0f} req/s")
    print(f"devices' scheduler lag p99, worst interval: {float(lag['Max Response Time']):.0f} ms")
    print(f"ratio: {ratio:.2f} (target >= 0.6) {'PASS' if ratio >= 0.6 else 'FAIL'}")
    print(f"devices with a fresh connection per exchange: {fresh_rps:.0f} req/s")
    print(f"fresh / keepalive: {fresh_rps / device_rps:.2f}")


if __name__ == "__main__":
    main()
