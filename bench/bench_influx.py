"""What the InfluxDB listener costs a worker: its maximum request rate with and without it.

One standalone Locust process (one worker) with FastHttpUsers polling a trivial keep-alive HTTP
server as fast as they can, once without the listener and once writing every second to a real
VictoriaMetrics, alternating over several rounds in the same invocation. A worker's maximum rate
is what one core gives it, so the figure is requests per CPU-second of the worker process between
test start and stop (robust on a shared machine); wall-clock rates are printed beside it. With
two or more CPUs the worker runs alone on CPU 0, the HTTP server and VictoriaMetrics on CPU 1.
Target: with / without at least 0.95. For scale it also measures bare request events (no HTTP
at all), where the listener's per-event cost shows undiluted.

    .venv/bin/python bench/bench_influx.py [--seconds 5] [--rounds 7] [--users 20]

This file is also the locustfile of the runs it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fleet_bench import headless
from locust import FastHttpUser, User, events, task

from mendersim.harness.reporting import influx

influx.setup(events)

HERE = Path(__file__).resolve()
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
TARGET_RATIO = 0.95
WORKER_CPU, SERVERS_CPU = 0, 1
CAN_PIN = {WORKER_CPU, SERVERS_CPU} <= os.sched_getaffinity(0)  # read before any pinning


class Poller(FastHttpUser):
    """A device polling for deployments with no think time."""

    @task
    def poll(self) -> None:
        self.client.get(
            "/api/devices/v1/deployments/device/deployments/next", name="deployments/next"
        )


class EventFirer(User):
    """Request events only: the listener's cost without any I/O to hide it."""

    @task
    def fire(self) -> None:
        fire = self.environment.events.request.fire
        for _ in range(100):
            fire(
                request_type="GET",
                name="deployments/next",
                response_time=1.0,
                response_length=0,
                response=None,
                context={"profile": "bench"},
                exception=None,
            )


_window: dict[str, float] = {}


@events.test_start.add_listener
def _window_start(**_kwargs) -> None:
    _window.update(cpu=time.process_time(), wall=time.monotonic())


@events.test_stop.add_listener
def _window_end(environment, **_kwargs) -> None:
    """Hand this run's requests, CPU and wall time to the bench that started it."""
    if path := os.environ.get("BENCH_RESULT"):
        figures = {
            "requests": environment.stats.total.num_requests,
            "cpu_s": time.process_time() - _window["cpu"],
            "wall_s": time.monotonic() - _window["wall"],
        }
        Path(path).write_text(json.dumps(figures))


@dataclass(frozen=True)
class Run:
    requests: int
    cpu_s: float
    wall_s: float

    @property
    def per_cpu_s(self) -> float:
        return self.requests / self.cpu_s

    @property
    def per_s(self) -> float:
        return self.requests / self.wall_s


def serve(port: int) -> None:
    """A keep-alive HTTP server answering every request with a fixed 200."""
    from gevent.server import StreamServer

    def handle(sock, _address) -> None:
        pending = b""
        try:
            while chunk := sock.recv(65536):
                pending += chunk
                count = pending.count(b"\r\n\r\n")
                if count:
                    pending = pending[pending.rindex(b"\r\n\r\n") + 4 :]
                    sock.sendall(RESPONSE * count)
        except OSError:
            pass  # the client went away when its run ended

    StreamServer(("127.0.0.1", port), handle, backlog=1024).serve_forever()


def run(
    user_class: str, args: argparse.Namespace, host: str, influx_url: str | None, workdir: Path
) -> Run:
    """One standalone Locust run, measured from test start to test stop."""
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE),
        user_class,
        *headless(args.users, args.seconds, host),
        "--loglevel",
        "WARNING",
    ]
    if influx_url:
        command += [
            "--influx-url",
            influx_url,
            "--influx-interval",
            "1",
            "--influx-run-id",
            f"bench-{user_class}",
        ]
    subprocess.run(
        command,
        check=False,
        timeout=args.seconds + 60,
        capture_output=True,
        cwd=workdir,
        env={**os.environ, "BENCH_RESULT": str(result)},
    )
    return Run(**json.loads(result.read_text()))


def compare(user_class: str, args: argparse.Namespace, host: str, vm: str, workdir: Path) -> float:
    """Alternate runs without and with the listener; print medians; return the CPU ratio."""
    runs: dict[str, list[Run]] = {"without": [], "with": []}
    for round_ in range(args.rounds):
        order = ("without", "with") if round_ % 2 == 0 else ("with", "without")
        for mode in order:
            runs[mode].append(run(user_class, args, host, vm if mode == "with" else None, workdir))
    per_cpu = {mode: statistics.median(r.per_cpu_s for r in done) for mode, done in runs.items()}
    per_s = {mode: statistics.median(r.per_s for r in done) for mode, done in runs.items()}
    for mode, done in runs.items():
        print(
            f"{user_class} {mode:>7} listener: {per_cpu[mode]:,.0f} per CPU-second "
            f"{_list([r.per_cpu_s for r in done])}; {per_s[mode]:,.0f}/s wall clock "
            f"{_list([r.per_s for r in done])}"
        )
    cpu_ratio = per_cpu["with"] / per_cpu["without"]
    print(
        f"{user_class} with/without: {cpu_ratio:.3f} per CPU-second, "
        f"{per_s['with'] / per_s['without']:.3f} wall clock"
    )
    return cpu_ratio


def _pin(cpu: int):
    """A preexec_fn keeping a process on one CPU, when there are several."""
    if not CAN_PIN:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:,.0f}" for v in values) + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each run")
    parser.add_argument("--rounds", type=int, default=7, help="runs per mode, alternating")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    sys.path.insert(0, str(HERE.parents[1] / "tests" / "influx"))
    from tsdb import free_port, victoria_metrics

    if pin := _pin(SERVERS_CPU):
        pin()  # the servers started below inherit it; each worker run moves to WORKER_CPU
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = subprocess.Popen([sys.executable, str(HERE), "--serve", str(port)])
        try:
            with victoria_metrics(workdir) as vm:
                host = f"http://127.0.0.1:{port}"
                http_ratio = compare("Poller", args, host, vm, workdir)
                compare("EventFirer", args, host, vm, workdir)
        finally:
            server.terminate()
            server.wait(timeout=10)
    verdict = "meets" if http_ratio >= TARGET_RATIO else "MISSES"
    print(
        f"Worker's maximum HTTP request rate with the listener / without: {http_ratio:.3f} "
        f"({verdict} the {TARGET_RATIO} target)"
    )
    return 0 if http_ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
