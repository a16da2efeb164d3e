"""What a Locust user and its greenlet cost while it sleeps, and what a user class can avoid.

Each variant runs in a fresh process: it spawns USERS users (or bare greenlets) in a gevent
Group, lets each reach its sleeping point, and reports the bytes per user that tracemalloc sees
(Python objects, greenlet stack copies) and the RSS delta (everything, Python's frame chunks
included). The variants differ in one thing each, so the differences are what that thing costs:

- greenlet: a bare gevent greenlet sleeping in a function (gevent's own floor);
- locust-user: a plain Locust User whose task sleeps (Locust's user, task set and call depth);
- deeper: the same user sleeping DEPTH Python calls further down (what each frame costs);
- no-tree: the same with gevent's greenlet-tree tracking off (the spawning stack and locals);
- device-user-taskset: mendersim's DeviceUser holding a built device asleep in its start-up
  spread, run by Locust's own user loop (a DefaultTaskSet and its frames);
- device-user: the same as the harness runs it (its own loop, greenlet-tree tracking off).

    .venv/bin/python bench/user_density.py [USERS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

VARIANTS = ("greenlet", "locust-user", "deeper", "no-tree", "device-user-taskset", "device-user")
REPEAT = 3  # processes per variant: RSS deltas vary from one process to the next
DEPTH = 10  # extra Python frames of the `deeper` variant
ASLEEP = [0]  # greenlets that reached their sleeping point


def measure(variant: str, users: int) -> dict[str, float]:
    if variant == "no-tree":
        os.environ["GEVENT_TRACK_GREENLET_TREE"] = "0"
    import gc

    import gevent
    import psutil
    from gevent.pool import Group
    from locust import User, constant, task
    from locust.env import Environment

    class SleepingUser(User):
        wait_time = constant(0)

        @task
        def live(self) -> None:
            _nested(DEPTH if variant == "deeper" else 0)

    environment = Environment(user_classes=[SleepingUser])
    factory = _device_users(environment, users, variant) if "device" in variant else None
    group = Group()
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    for _ in range(users):
        if variant == "greenlet":
            group.spawn(_nested, 0)
        elif factory is not None:
            factory().start(group)
        else:
            SleepingUser(environment).start(group)
    # Every greenlet runs to its sleeping point, however loaded the machine; bounded in time.
    deadline = time.monotonic() + 120
    while ASLEEP[0] < users and time.monotonic() < deadline:
        gevent.sleep(0.1)
    asleep = ASLEEP[0]
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    gc.collect()
    rss = process.memory_info().rss - rss_before
    group.kill(block=False)
    return {"traced": traced / users, "rss": rss / users, "asleep": asleep}


def _nested(depth: int) -> None:
    if depth:
        _nested(depth - 1)
    else:
        import gevent

        ASLEEP[0] += 1
        gevent.sleep(1e9)


def _device_users(environment, users: int, variant: str):
    """DeviceUsers whose pool hands out devices built as the harness builds them, asleep in
    their start-up spread (an idle device: not authenticated yet)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from device_density import Answerer, records
    from locust import User

    from mendersim.device.behaviour import Behaviour
    from mendersim.device.engine import Device, EngineConfig
    from mendersim.fleet import keys
    from mendersim.harness.worker.clock import GeventClock, LagHistogram
    from mendersim.harness.worker.user import DeviceUser, lean_greenlets

    class TaskSetDeviceUser(DeviceUser):
        run = User.run

    class CountingClock(GeventClock):
        __slots__ = ()

        def sleep(self, seconds: float) -> None:
            ASLEEP[0] += 1
            super().sleep(seconds)

    behaviour = Behaviour.from_profile({"name": "automotive"})
    config = EngineConfig(seed=1, poll_interval=1e6)
    clock, answerer = CountingClock(LagHistogram()), Answerer()
    fleet = iter(records(users, keys.generate("ed25519")))

    class Pool:
        def acquire(self):
            return Device(next(fleet), behaviour, answerer, clock, config=config)

        def release(self, device) -> None:
            device.stop()

    environment.mendersim_pool = Pool()
    if variant == "device-user-taskset":
        return lambda: TaskSetDeviceUser(environment)
    lean_greenlets()
    return lambda: DeviceUser(environment)


def main(users: int) -> None:
    if len(sys.argv) > 2:  # one variant, in this process
        print(json.dumps(measure(sys.argv[2], users)))
        return
    results = {}
    for variant in VARIANTS:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, str(users), variant],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.splitlines()[-1]
            )
            for _ in range(REPEAT)
        ]
        results[variant] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    base = results["locust-user"]["rss"]
    print(f"users per variant: {users}, medians of {REPEAT} processes each")
    print(f"{'variant':<20}{'traced B/user':>15}{'RSS B/user':>12}{'RSS / locust-user':>19}")
    for variant, figures in results.items():
        if figures["asleep"] < users:
            raise SystemExit(f"{variant}: {figures['asleep']} of {users} users reached their sleep")
        print(
            f"{variant:<20}{figures['traced']:>15.0f}{figures['rss']:>12.0f}"
            f"{figures['rss'] / base:>19.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
