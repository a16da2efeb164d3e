"""What the InfluxDB listener costs a worker: its maximum request rate with and without it.

One standalone Locust process (one worker) with FastHttpUsers polling a trivial keep-alive HTTP
server as fast as they can, once without the listener and once writing every second to a real
VictoriaMetrics, alternating over several rounds in the same invocation; the ratio of the median
rates is the figure (target: at least 0.95). For scale it also measures bare request events
(no HTTP at all), where the listener's per-event cost shows undiluted.

    /work/venv/bin/python bench/bench_influx.py [--seconds 10] [--rounds 3] [--users 20]

This file is also the locustfile of the runs it starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from locust import FastHttpUser, User, events, task

from mendersim.harness import influx

influx.setup(events)

HERE = Path(__file__).resolve()
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
TARGET_RATIO = 0.95


class Poller(FastHttpUser):
    """A device polling for deployments with no think time."""

    @task
    def poll(self) -> None:
        self.client.get("/api/devices/v1/deployments/device/deployments/next",
                        name="deployments/next")


class EventFirer(User):
    """Request events only: the listener's cost without any I/O to hide it."""

    @task
    def fire(self) -> None:
        fire = self.environment.events.request.fire
        for _ in range(100):
            fire(request_type="GET", name="deployments/next", response_time=1.0,
                 response_length=0, response=None, context={"profile": "bench"},
                 exception=None)


def serve(port: int) -> None:
    """A keep-alive HTTP server answering every request with a fixed 200, on its own core."""
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


def rate(user_class: str, host: str, seconds: int, users: int, influx_url: str | None,
         workdir: Path) -> float:
    """Requests per second of one standalone Locust run."""
    report = workdir / "stats.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(HERE), user_class, "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", host,
        "--json-file", str(report.with_suffix("")), "--only-summary", "--loglevel", "WARNING",
    ]
    if influx_url:
        command += ["--influx-url", influx_url, "--influx-interval", "1",
                    "--influx-run-id", f"bench-{user_class}"]
    subprocess.run(command, check=False, timeout=seconds + 60, capture_output=True, cwd=workdir)
    [entry] = [e for e in json.loads(report.read_text()) if e["name"] == "deployments/next"]
    return entry["num_requests"] / (entry["last_request_timestamp"] - entry["start_time"])


def compare(user_class: str, host: str, args: argparse.Namespace, vm: str,
            workdir: Path) -> float:
    runs: dict[str, list[float]] = {"without": [], "with": []}
    for round_ in range(args.rounds):
        order = ("without", "with") if round_ % 2 == 0 else ("with", "without")
        for mode in order:
            runs[mode].append(rate(user_class, host, args.seconds, args.users,
                                   vm if mode == "with" else None, workdir))
    without, with_ = statistics.median(runs["without"]), statistics.median(runs["with"])
    print(f"{user_class}: without listener {without:,.0f}/s {_list(runs['without'])}; "
          f"with listener {with_:,.0f}/s {_list(runs['with'])}; ratio {with_ / without:.3f}")
    return with_ / without


def _list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:,.0f}" for v in values) + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode, alternating")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    sys.path.insert(0, str(HERE.parents[1] / "tests" / "influx"))
    from tsdb import free_port, victoria_metrics

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = subprocess.Popen([sys.executable, str(HERE), "--serve", str(port)])
        try:
            with victoria_metrics(workdir) as vm:
                host = f"http://127.0.0.1:{port}"
                http_ratio = compare("Poller", host, args, vm, workdir)
                compare("EventFirer", host, args, vm, workdir)
        finally:
            server.terminate()
            server.wait(timeout=10)
    verdict = "meets" if http_ratio >= TARGET_RATIO else "MISSES"
    print(f"HTTP request rate with the listener / without: {http_ratio:.3f} "
          f"({verdict} the {TARGET_RATIO} target)")
    return 0 if http_ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
