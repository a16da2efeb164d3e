"""Inventory write rate per 10,000 devices for every shipped profile, from the engine itself.

Devices run on a virtual clock against a counting server that never offers a deployment, so a
simulated week takes seconds. Printed per profile: inventory PUTs per hour per 10,000 devices
with the profile's churn rules, and with churn off (`--mendersim-traffic churn=off`), measured in
the same run.

    python bench/bench_inventory_churn.py [--devices 200] [--days 7]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path

from mendersim.device.behaviour import Behaviour
from mendersim.device.engine import Device, EngineConfig
from mendersim.device.transport import Response
from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord, compact_json
from mendersim.fleet.profiles import load_profile

REPO = Path(__file__).resolve().parents[1]
HOUR = 3600.0


class CountingServer:
    """Accepts everyone, never deploys, counts inventory PUTs."""

    def __init__(self) -> None:
        self.puts = 0

    def request(self, step, method, url, *, headers=None, body=None) -> Response:
        if step == "auth":
            return Response(200, b"jwt")
        if step.startswith("inventory"):
            self.puts += 1
            return Response(200)
        return Response(204)

    def stream(self, step, url, *, headers=None):
        raise AssertionError("no deployment is offered")


class Stop(Exception):
    pass


class SpanClock:
    """A virtual clock for one device; sleeping past the end of the span stops the device."""

    def __init__(self, until: float) -> None:
        self.t = 0.0
        self.until = until

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1.8e9 + self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        if self.t >= self.until:
            raise Stop


def writes_per_hour(behaviour: Behaviour, devices: int, days: float, key) -> float:
    server = CountingServer()
    pem = keys.private_pem(key)
    for index in range(devices):
        clock = SpanClock(days * 24 * HOUR)
        record = DeviceRecord(
            f"{behaviour.name}-{index:06d}",
            behaviour.name,
            "ed25519",
            compact_json({"serial": str(index)}),
            pem,
            "dev",
            "fw-1",
            "{}",
        )
        device = Device(record, behaviour, server, clock, config=EngineConfig(seed=1))
        with contextlib.suppress(Stop):
            device.run()
    return server.puts / devices / (days * 24) * 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args()
    key = keys.generate("ed25519")
    print(f"{args.devices} devices per profile, {args.days:g} simulated days")
    print(f"{'profile':16} {'PUT/h per 10k, churn':>22} {'churn off':>10} {'ratio':>6}")
    for path in sorted((REPO / "profiles" / "industries").glob("*.yaml")):
        behaviour = Behaviour.from_profile(load_profile(path))
        frozen = dataclasses.replace(
            behaviour, traffic=dataclasses.replace(behaviour.traffic, churn=False)
        )
        churn = writes_per_hour(behaviour, args.devices, args.days, key)
        off = writes_per_hour(frozen, args.devices, args.days, key)
        print(f"{path.stem:16} {churn:22.0f} {off:10.1f} {churn / off:6.1f}")


if __name__ == "__main__":
    main()
