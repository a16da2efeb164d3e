"""Run by test_influx_stats in a fresh process, patched by Locust's import as in a real run:
flush the listener to a server that accepts and never answers, while a device-like greenlet
ticks every 10 ms, and print what happened as JSON."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import gevent
from gevent.server import StreamServer
from locust.env import Environment

from mendersim.harness.reporting.influx import InfluxListener


def never_answer(_sock, _address) -> None:
    gevent.sleep(5)


def main() -> None:
    server = StreamServer(("127.0.0.1", 0), never_answer)
    server.start()
    options = SimpleNamespace(
        influx_url=f"http://127.0.0.1:{server.server_port}",
        influx_token="",
        influx_org="",
        influx_bucket="b",
        influx_interval=1.0,
        influx_run_id="slow",
        influx_buffer=1000,
    )
    environment = Environment(parsed_options=options)
    environment.create_local_runner()
    listener = InfluxListener(environment)
    listener.on_test_start(environment=environment)
    environment.events.request.fire(
        request_type="GET",
        name="auth",
        response_time=1.0,
        response_length=0,
        response=None,
        context={},
        exception=None,
    )
    ticks = 0

    def device() -> None:
        nonlocal ticks
        while True:
            gevent.sleep(0.01)
            ticks += 1

    ticker = gevent.spawn(device)
    started = time.monotonic()
    listener.flush()  # times out after the 1 s interval
    elapsed = time.monotonic() - started
    ticker.kill()
    listener.on_quit()
    server.stop()
    print(json.dumps({"elapsed": elapsed, "ticks": ticks, "dropped": listener.dropped_points}))


if __name__ == "__main__":
    main()
