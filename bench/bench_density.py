"""Density: how many devices at production intervals one Locust process holds.

One standalone Locust process (fresh connections, production timing: polls every 1800 s, start-up
spread over one poll interval) runs every device of a seeded fleet against the embedded server,
each pinned to its own core. Once every user is spawned, the benchmark samples the process's RSS
and the harness's own scheduler-lag p99 (from the Fleet JSON of the web UI) for a while, then
stops the run with SIGTERM. Targets: RSS <= 2 GB and lag p99 <= 1 s at 100,000 devices; at
any size (issue 15, item 1) lag p99 <= 1 s while spawning too, no worker reported missing, the
web UI's Fleet JSON and page answering in under 1 s with every device counted, and SIGTERM ending
every process of the run within 15 s with the store holding what the server accepted.

Memory per device is the growth of every process of the run (Locust and its children) from the
first sample to the last, divided by the devices spawned in between: the process's own start-up
cost is not a device's. `--polling` seeds a fleet polling every 60 s and starts every device
within 30 s, so that by the end of the settle time every device has authenticated and polls;
without it, devices at production timing are measured idle (most still in their start spread).

    python bench/bench_density.py --devices 100000
    python bench/bench_density.py --devices 20000 --polling --settle 90
    python bench/bench_density.py --devices 1000000 --processes 2 --share-cores --server stub
    python bench/bench_density.py --devices 1000000 --processes 2 --share-cores --server stub \
        --stop-at-users 500000
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import re
import shutil
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import requests
from fleet_bench import SERVER_CPU, locust, pin, seeded_fleet
from stub_server import running_stub

from mendersim.fleet.acceptance import ServerKey
from mendersim.server.process import free_port, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--spawn-rate", type=float, default=2000)
    parser.add_argument("--settle", type=float, default=60, help="seconds sampled after spawning")
    parser.add_argument("--max-seconds", type=float, default=300, help="bound of the whole run")
    parser.add_argument("--polling", action="store_true", help="poll every 60 s, all started")
    parser.add_argument("--ramp-window", type=float, default=30, help="start-up window (polling)")
    parser.add_argument("--processes", type=int, default=0, help="Locust --processes (workers)")
    parser.add_argument("--trace", action="store_true", help="print every sample")
    parser.add_argument(
        "--stop-at-users",
        type=int,
        default=0,
        help="SIGTERM mid-ramp, once this many users run: the stop of a run still spawning",
    )
    parser.add_argument(
        "--server-latency",
        help="the embedded server answers this late (its --latency, e.g. 30s): SIGTERM then "
        "meets as many requests on the wire as a saturated server leaves",
    )
    parser.add_argument(
        "--server",
        choices=("embedded", "stub"),
        default="embedded",
        help="the embedded server, or nginx answering with fixed answers (bench/stub_server.py)"
        " so that a fleet the embedded server cannot keep up with measures the generator",
    )
    parser.add_argument(
        "--share-cores",
        action="store_true",
        help="let the load generator's processes use every core (the server stays pinned)",
    )
    parser.add_argument(
        "--compare-pacing",
        action="store_true",
        help="run twice, start pacing off then adaptive, and compare their scheduler lag",
    )
    args = parser.parse_args()

    source = seeded_fleet(args.devices, poll_interval=60 if args.polling else 1800)
    if not args.compare_pacing:
        report(args, run_once(args, source, "adaptive"))
        return
    runs = {pacing: run_once(args, source, pacing) for pacing in ("off", "adaptive")}
    for pacing, figures in runs.items():
        print(f"-- start pacing {pacing}")
        report(args, figures)
    off, on = (max(runs[p]["ramp_lag"] + runs[p]["lag"]) for p in ("off", "adaptive"))
    print(f"worst lag p99, adaptive / off: {on:.3f} s / {off:.3f} s = {on / max(off, 1e-9):.2f}")


def run_once(args, source: Path, pacing: str) -> dict:
    timing = ["--mendersim-scenario", "ramp", "--mendersim-ramp-window", str(args.ramp_window)]
    workers = ["--processes", str(args.processes)] if args.processes else []
    with tempfile.TemporaryDirectory(prefix="mendersim-density-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "fleet.db"
        shutil.copyfile(source, db)  # the run writes device state; keep the cached fleet fresh
        latency = ["--latency", args.server_latency] if args.server_latency else []
        serving = (
            running_stub()
            if args.server == "stub"
            else running_server("--acceptance", "auto", *latency)
        )
        with serving as server:
            for process in [server.process, *psutil.Process(server.process.pid).children()]:
                pin(process.pid, SERVER_CPU)
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
                    "--mendersim-start-pacing",
                    pacing,
                    "--csv",
                    str(tmp / "run"),
                    *(timing if args.polling else []),
                    *workers,
                ],
                log,
                pinned=not args.share_cores,
            )
            try:
                figures = sample(run, port, args)
            finally:
                stopped_at = time.strftime("%Y-%m-%d %H:%M:%S")
                figures_exit = stop(run)
                kept = Path(tempfile.gettempdir()) / f"bench-density-{pacing}.log"
                shutil.copyfile(log, kept)  # the run's console outlives its folder
                print(f"console of the run: {kept}")
            figures.update(figures_exit)
            figures["server_accepted"] = (
                answered_auths(tmp / "run_stats.csv")
                if args.server == "stub"
                else server.management().count_devices("accepted")
            )
            figures["store_accepted"] = store_accepted(db, server.url)
            text = log.read_text(errors="replace")
            missing = [line for line in text.splitlines() if "setting state to missing" in line]
            # Locust's lines start "[YYYY-mm-dd HH:MM:SS,mmm]": running, or stopping after SIGTERM
            figures["missing"] = [line for line in missing if line[1:20] < stopped_at]
            figures["missing_stopping"] = len(missing) - len(figures["missing"])
            figures["paced"] = [line for line in text.splitlines() if "start-ups paced" in line]
            figures["handins"] = [line for line in text.splitlines() if "hand-in of" in line]
            figures["connection_failures"] = connection_failures(tmp / "run_failures.csv")
            figures["saturated"] = text.count("cannot keep its devices") + text.count(
                "the load generator is saturated"
            )
    return figures


def stop(run) -> dict:
    """SIGTERM the run; seconds until every process of it (workers, children) is gone."""
    try:
        processes = [psutil.Process(run.pid), *psutil.Process(run.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return {"exit_s": 0.0, "left_alive": 0}  # it ended before it was asked to
    started = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=120)
    for process in alive:
        process.kill()
    run.wait(timeout=10)
    return {"exit_s": time.monotonic() - started, "left_alive": len(alive)}


def connection_failures(path: Path) -> Counter[str]:
    """Exchanges that failed below HTTP (reset, refused, timed out...), by kind, from Locust's
    failures CSV, where the transport's error reads `TransportError('kind: detail')`."""
    kinds: Counter[str] = Counter()
    if path.exists():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                kind = re.match(r"TransportError\('(\w+):", row["Error"])
                if kind:
                    kinds[kind.group(1)] += int(row["Occurrences"])
    return kinds


def answered_auths(path: Path) -> int:
    """Authentications answered 200, from Locust's stats CSV: what the stub accepted (it keeps
    no state; its token never expires, so each device authenticates once)."""
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if (row["Type"], row["Name"]) == ("POST", "auth"):
                return int(row["Request Count"]) - int(row["Failure Count"])
    return 0


def store_accepted(db: Path, url: str) -> int:
    """Devices the store, written at the end of the run, says this server accepted."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM acceptance WHERE server = ? AND status = 'accepted'",
            (ServerKey.of(url).url,),
        ).fetchone()
    return count


def timed_get(url: str) -> tuple[float, requests.Response]:
    started = time.monotonic()
    answer = requests.get(url, timeout=30)
    return time.monotonic() - started, answer


def sample(run, port: int, args) -> dict:
    process = psutil.Process(run.pid)
    started = time.monotonic()
    deadline = started + args.max_seconds
    spawned_at = None
    rss, lag, ramp_lag, fleet, first = [], [], [], {}, None
    answers: list[float] = []  # seconds the master's web UI took: Fleet JSON, then its page
    slow: list[str] = []  # when an answer took a second or more, and which
    counts: list[tuple[int, int]] = []  # users, devices counted by status, once spawned
    while time.monotonic() < deadline and run.poll() is None:
        time.sleep(3)
        try:
            took, answer = timed_get(f"http://127.0.0.1:{port}/mendersim/fleet")
            fleet = answer.json()
            page_took, _ = timed_get(f"http://127.0.0.1:{port}/")
        except requests.RequestException:
            continue
        answers += [took, page_took]
        for what, seconds in (("Fleet JSON", took), ("page", page_took)):
            if seconds >= 1:
                users = fleet["users"]
                slow.append(f"{time.strftime('%H:%M:%S')} {what} {seconds:.3f} s, {users} users")
        if first is None:
            first = (fleet["users"], total_rss(process))
        if args.trace:
            print(
                time.strftime("%H:%M:%S"),
                f"{time.monotonic() - started:5.0f} s  users {fleet['users']:6d}  "
                f"lag p99 {fleet['scheduler_lag_p99_s']:.3f} s "
                f"max {fleet['scheduler_lag_max_s']:.3f} s"
                f"  workers {fleet.get('workers')}  {fleet['devices_by_status']}",
            )
        if args.stop_at_users and spawned_at is None and fleet["users"] >= args.stop_at_users:
            print(f"{fleet['users']} users after {time.monotonic() - started:.0f} s: SIGTERM")
            ramp_lag.append(fleet["scheduler_lag_p99_s"])
            break
        if spawned_at is None and fleet["users"] >= args.devices:
            spawned_at = time.monotonic()
            print(f"all {args.devices} users spawned after {spawned_at - started:.0f} s")
        if spawned_at is None or time.monotonic() - spawned_at <= 6:
            ramp_lag.append(fleet["scheduler_lag_p99_s"])
        if spawned_at is not None and time.monotonic() - spawned_at > 6:  # a full report later
            rss.append(total_rss(process))
            lag.append(fleet["scheduler_lag_p99_s"])
            counts.append((fleet["users"], sum(fleet["devices_by_status"].values())))
            if time.monotonic() - spawned_at >= args.settle:
                break
    if not rss and not (args.stop_at_users and ramp_lag):
        raise SystemExit("the fleet was not spawned within --max-seconds")
    return {
        "rss": rss,
        "lag": lag,
        "ramp_lag": ramp_lag,
        "fleet": fleet,
        "spawn_s": None if spawned_at is None else spawned_at - started,
        "first": first,
        "answers": answers,
        "slow": slow,
        "counts": counts,
    }


def total_rss(process: psutil.Process) -> int:
    """Resident memory of the Locust process and every process it started."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def report(args, figures: dict) -> None:
    fleet = figures["fleet"]
    if figures["rss"]:
        full_size(args, figures)
    else:
        print(f"devices: {args.devices}  stopped mid-ramp at {fleet['users']} users")
    print(f"devices by status at the end: {fleet['devices_by_status']}")
    lag = max(figures["lag"] or [0.0])
    print(f"scheduler lag p99, worst 3 s interval while spawning: {max(figures['ramp_lag']):.3f} s")
    print(
        f"workers reported missing while running: {len(figures['missing'])}, "
        f"while stopping: {figures['missing_stopping']}"
    )
    for line in figures["missing"]:
        print(f"  {line.strip()}")
    print(f"saturation warnings on the console: {figures['saturated']}")
    for line in figures["paced"]:
        print(f"  {line.strip()}")
    answers = sorted(figures["answers"])
    print(
        f"web UI answers (Fleet JSON and page), {len(answers)}: max {answers[-1]:.3f} s, "
        f"p95 {answers[int(0.95 * (len(answers) - 1))]:.3f} s (target < 1 s)"
    )
    for line in figures["slow"]:
        print(f"  {line}")
    wrong = [c for c in figures["counts"] if c != (args.devices, args.devices)]
    print(f"Fleet JSON samples counting other than {args.devices} users and devices: {wrong}")
    print(
        f"SIGTERM to the last process gone: {figures['exit_s']:.1f} s (target <= 15 s), "
        f"left alive: {figures['left_alive']}"
    )
    for line in figures["handins"]:
        print(f"  {line.strip()}")
    print(
        f"accepted, {'answered by the stub' if args.server == 'stub' else 'server'} / store "
        f"after the run: {figures['server_accepted']} / "
        f"{figures['store_accepted']}"
    )
    print(f"exchanges failed below HTTP, by kind: {dict(figures['connection_failures'])}")
    met = (
        max(figures["rss"] or [0]) <= 20_000 * args.devices  # 2 GB per 100,000 devices (issue 5)
        and max(lag, max(figures["ramp_lag"])) <= 1
        and not figures["missing"]
        and not figures["missing_stopping"]
        and answers[-1] < 1
        and not wrong
        and figures["exit_s"] <= 15
    )
    print("PASS" if met else "FAIL")


def full_size(args, figures: dict) -> None:
    """Memory and lag once every device runs."""
    rss_gb = max(figures["rss"]) / 1e9
    print(f"devices: {args.devices}  spawned in {figures['spawn_s']:.0f} s")
    print(f"RSS max over {len(figures['rss'])} samples: {rss_gb:.2f} GB (target <= 2 GB)")
    first_users, first_rss = figures["first"]
    per_device = (figures["rss"][-1] - first_rss) / max(args.devices - first_users, 1)
    state = "authenticated and polling every 60 s" if args.polling else "idle"
    print(f"bytes per device: {max(figures['rss']) / args.devices:.0f} (the whole RSS)")
    print(
        f"bytes per device ({state}), growth from {first_users} users and "
        f"{first_rss / 1e6:.0f} MB to the end: {per_device:.0f}"
    )
    print(f"scheduler lag p99, worst 3 s interval: {max(figures['lag']):.3f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
