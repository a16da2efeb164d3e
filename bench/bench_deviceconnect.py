"""Deviceconnect: memory per device holding its websocket, and the open-file ceiling.

One process (gevent, patched as in a Locust run) runs a fleet of real engine devices with the
harness's transport and clock against the embedded server, at production timing (polls every
1800 s): every device authenticates, sends inventory and polls once, then idles. The process's
RSS is taken with that fleet idle, then again after every one of the same devices has opened
its deviceconnect websocket and held it for one ping round; the difference per device is what a
connected device costs. Open file descriptors are counted the same way.

    .venv/bin/python bench/bench_deviceconnect.py --devices 10000
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import ctypes  # noqa: E402
import ctypes.util  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from collections import Counter  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402
from fleet_bench import LOAD_CPU, SERVER_CPU, pin, seeded_fleet  # noqa: E402

from mendersim.device.behaviour import Behaviour  # noqa: E402
from mendersim.device.deviceconnect import DeviceConnect  # noqa: E402
from mendersim.device.engine import Device, EngineConfig  # noqa: E402
from mendersim.fleet.store import SeedStore  # noqa: E402
from mendersim.harness.worker.clock import GeventClock, LagHistogram  # noqa: E402
from mendersim.harness.worker.transport import GeventTransport  # noqa: E402
from mendersim.server.process import running_server  # noqa: E402

OPEN_PER_SECOND = 1000  # links opened at this pace, not all in one burst


class Counted:
    """Stands for Locust's `events.request`: counts entries and failures by name."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.ms: dict[str, float] = Counter()
        self.reasons: Counter[str] = Counter()

    def fire(self, *, name: str, exception: BaseException | None, response_time: float, **_):
        self.count[name] += 1
        self.ms[name] += response_time
        if exception is not None:
            self.failed[name] += 1
            self.reasons[f"{name}: {exception}"[:90]] += 1


def _wait(condition, seconds: float, what: str, events: Counted) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            counts = events.count.items()
            seen = ", ".join(f"{k} {v} ({events.failed[k]} failed)" for k, v in counts)
            reasons = "; ".join(f"{n} x {r}" for r, n in events.reasons.most_common(4))
            raise SystemExit(f"{what}: not reached within {seconds:.0f} s; {seen}; {reasons}")
        gevent.sleep(0.5)


def _settled_rss(process: psutil.Process) -> int:
    """RSS of what is live: freed heap pages go back to the system first (glibc's
    malloc_trim), so that memory freed by the start-up's exchanges does not hide growth."""
    gc.collect()
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    return process.memory_info().rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=20, help="start-up spread, seconds")
    parser.add_argument("--ping", type=float, default=54, help="device ping interval, seconds")
    args = parser.parse_args()
    count = args.devices

    records = SeedStore.open(seeded_fleet(count)).load_devices()[:count]
    me = psutil.Process()
    pin(os.getpid(), LOAD_CPU)
    with running_server("--acceptance", "auto") as server:
        pin(server.process.pid, SERVER_CPU)
        served = psutil.Process(server.process.pid)
        events = Counted()
        environment = types.SimpleNamespace(events=types.SimpleNamespace(request=events))
        behaviour = Behaviour.from_profile(
            {"name": records[0].profile, "network": {"profile": "none"}}
        )
        config = EngineConfig(seed=1, start_spread=args.spread, deviceconnect_ping=args.ping)
        clock = GeventClock(LagHistogram())
        rss0, fds0, server0 = _settled_rss(me), me.num_fds(), served.memory_info().rss

        devices = [
            Device(
                record,
                behaviour,
                GeventTransport(environment, server.url, profile=record.profile),
                clock,
                config=config,
            )
            for record in records
        ]
        lives = [gevent.spawn(device.run) for device in devices]
        _wait(
            lambda: (
                all(device.accepted_in_run and device._token for device in devices)
                and events.count["deployments/next"] - events.failed["deployments/next"] >= count
            ),
            args.spread + 400,
            "every device accepted and polled",
            events,
        )
        gevent.sleep(2)
        rss1, fds1, server1 = _settled_rss(me), me.num_fds(), served.memory_info().rss

        links = []
        opened = time.monotonic()
        for n, device in enumerate(devices):
            link = DeviceConnect(device)
            link.token_changed(device._token)  # what the device does after authenticating
            links.append(link)
            if n % (OPEN_PER_SECOND // 10) == 0:
                gevent.sleep(0.1)
        management = server.management()
        _wait(
            lambda: management.mendersim_status()["deviceconnect"]["connected"] >= count,
            120,
            "every link open",
            events,
        )
        open_s = time.monotonic() - opened
        gevent.sleep(args.ping + 5)  # one round of pings on every link
        rss2, fds2, server2 = _settled_rss(me), me.num_fds(), served.memory_info().rss
        connected = management.mendersim_status()["deviceconnect"]["connected"]

        for link in links:
            link.stop()
        for device in devices:
            device.stop()
        gevent.killall(lives, block=False)

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    pings, ping_failed = events.count["deviceconnect ping"], events.failed["deviceconnect ping"]
    idle, linked = (rss1 - rss0) / count, (rss2 - rss1) / count
    print(f"devices: {count}, connected at the end: {connected}, opened in {open_s:.1f} s")
    print(f"generator RSS: {rss0 / 2**20:.0f} MiB empty, {rss1 / 2**20:.0f} MiB fleet idle, ")
    print(f"               {rss2 / 2**20:.0f} MiB fleet with websockets")
    print(f"bytes per device, idle without websocket:  {idle:8.0f}")
    print(f"bytes per device, added by its websocket:  {linked:8.0f}")
    print(f"ratio connected / idle device:             {(idle + linked) / idle:8.2f}")
    print(f"embedded server bytes per connection:      {(server2 - server1) / count:8.0f}")
    print(f"  (server bytes per idle device:           {(server1 - server0) / count:8.0f})")
    print(f"open files: {fds0} empty, {fds1} fleet idle, {fds2} with websockets")
    print(f"  per connected device:                    {(fds2 - fds1) / count:8.2f}")
    print(f"open-file limit (ulimit -n): {soft}; devices per process at most {soft - fds1}")
    mean = events.ms["deviceconnect ping"] / pings if pings else 0.0
    print(f"pings: {pings} ({ping_failed} failed), mean round trip {mean:.1f} ms")
    print(f"connects: {events.count['deviceconnect connect']} ")
    print(f"  ({events.failed['deviceconnect connect']} failed); drops: ", end="")
    print(events.count["deviceconnect drop"])
    for reason, times in events.reasons.most_common(5):
        print(f"  failures: {times} x {reason}")


if __name__ == "__main__":
    main()
