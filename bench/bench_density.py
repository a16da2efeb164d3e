"""Density: how many devices at production intervals one Locust process holds.

One standalone Locust process (fresh connections, production timing: polls every 1800 s, start-up
spread over one poll interval) runs every device of a seeded fleet against the embedded server,
each pinned to its own core. Once every user is spawned, the benchmark samples the process's RSS
and the harness's own scheduler-lag p99 (from the Fleet JSON of the web UI) for a while, then
stops the run with SIGTERM. Targets: RSS <= 2 GB and lag p99 <= 1 s at 100,000 devices.

    python bench/bench_density.py --devices 100000
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psutil
import requests
from fleet_bench import SERVER_CPU, locust, pin, seeded_fleet

from mendersim.server.process import free_port, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--spawn-rate", type=float, default=2000)
    parser.add_argument("--settle", type=float, default=60, help="seconds sampled after spawning")
    parser.add_argument("--max-seconds", type=float, default=300, help="bound of the whole run")
    args = parser.parse_args()

    source = seeded_fleet(args.devices)
    with tempfile.TemporaryDirectory(prefix="mendersim-density-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "fleet.db"
        shutil.copyfile(source, db)  # the run writes device state; keep the cached fleet fresh
        with running_server("--acceptance", "auto") as server:
            pin(server.process.pid, SERVER_CPU)
            port = free_port()
            log = tmp / "locust.log"
            run = locust(
                [
                    "--autostart",
                    "--autoquit",
                    "0",
                    "--web-host",
                    "127.0.0.1",
                    "--web-port",
                    str(port),
                    "-u",
                    str(args.devices),
                    "-r",
                    str(args.spawn_rate),
                    "-t",
                    f"{int(args.max_seconds)}s",
                    "--host",
                    server.url,
                    "--mendersim-db",
                    str(db),
                    "--mendersim-connection",
                    "fresh",
                    "--mendersim-time-scale",
                    "1",
                ],
                log,
            )
            try:
                figures = sample(run, port, args)
            finally:
                run.send_signal(signal.SIGTERM)
                run.wait(timeout=120)
        report(args, figures, log)


def sample(run, port: int, args) -> dict:
    process = psutil.Process(run.pid)
    started = time.monotonic()
    deadline = started + args.max_seconds
    spawned_at = None
    rss, lag, fleet = [], [], {}
    while time.monotonic() < deadline and run.poll() is None:
        time.sleep(3)
        try:
            fleet = requests.get(f"http://127.0.0.1:{port}/mendersim/fleet", timeout=10).json()
        except requests.RequestException:
            continue
        if spawned_at is None and fleet["users"] >= args.devices:
            spawned_at = time.monotonic()
            print(f"all {args.devices} users spawned after {spawned_at - started:.0f} s")
        if spawned_at is not None and time.monotonic() - spawned_at > 6:  # a full report later
            rss.append(process.memory_info().rss)
            lag.append(fleet["scheduler_lag_p99_s"])
            if time.monotonic() - spawned_at >= args.settle:
                break
    if not rss:
        raise SystemExit("the fleet was not spawned within --max-seconds")
    return {"rss": rss, "lag": lag, "fleet": fleet, "spawn_s": spawned_at - started}


def report(args, figures: dict, log: Path) -> None:
    rss_gb = max(figures["rss"]) / 1e9
    lag = max(figures["lag"])
    fleet = figures["fleet"]
    print(f"devices: {args.devices}  spawned in {figures['spawn_s']:.0f} s")
    print(f"devices by status at the end: {fleet['devices_by_status']}")
    print(f"RSS max over {len(figures['rss'])} samples: {rss_gb:.2f} GB (target <= 2 GB)")
    print(f"bytes per device: {max(figures['rss']) / args.devices:.0f}")
    print(f"scheduler lag p99, worst 3 s interval: {lag:.3f} s (target <= 1 s)")
    print("PASS" if rss_gb <= 2 and lag <= 1 else "FAIL")


if __name__ == "__main__":
    main()
