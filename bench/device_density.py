"""What an idle simulated device costs: bytes per device and CPU per poll cycle.

Devices are built from distinct records, authenticated and polled once against an in-process
answerer (no sockets), then measured with tracemalloc. The record itself belongs to the seed
store and is reported apart from the engine's own state.

    .venv/bin/python bench/device_density.py [DEVICES]
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from mendersim.device.behaviour import Behaviour
from mendersim.device.engine import Device, EngineConfig
from mendersim.device.transport import Response
from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord, compact_json

TOKEN = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 400 + ".sig").encode()


class Answerer:
    """Accepts every device and never has a deployment."""

    def request(self, step, method, url, *, headers=None, body=None):
        if step == "auth":
            return Response(200, TOKEN)
        if step == "deployments/next":
            return Response(404 if method == "POST" else 204)
        return Response(200)

    def stream(self, step, url, *, headers=None):
        raise AssertionError("no downloads here")


class Clock:
    def now(self) -> float:
        return 0.0

    def wall(self) -> float:
        return 1_790_000_000.0

    def sleep(self, seconds: float) -> None:
        pass


def records(count: int, key: keys.PrivateKey) -> list[DeviceRecord]:
    pem = keys.private_pem(key)
    return [
        DeviceRecord(
            device_id=f"automotive-{n:06d}",
            profile="automotive",
            key_type="ed25519",
            id_data_text=compact_json({"vin": f"WVWZZZ1JZXW{n:06d}"}),
            private_key_pem=pem,
            device_type="tcu-imx8mm",
            artifact_name="tcu-fw-4.2.1",
            inventory_text=compact_json({"firmware_version": "4.2.1", "modem": "Quectel AG35"}),
        )
        for n in range(count)
    ]


def main(count: int) -> None:
    profile = {"name": "automotive", "network": {"profile": "lte"}}
    behaviour = Behaviour.from_profile(profile)
    config = EngineConfig(seed=1)
    answerer, clock = Answerer(), Clock()
    fleet = records(count, keys.generate("ed25519"))

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    devices = [Device(r, behaviour, answerer, clock, config=config) for r in fleet]
    built = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for device in devices:
        device._inventory_cycle()
        device._poll_cycle()
    first_cycle = time.perf_counter() - started
    after_auth = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for device in devices:
        device._poll_cycle()
    poll_cycle = time.perf_counter() - started
    tracemalloc.stop()

    print(f"devices: {count}")
    print(f"engine state per device, built:            {(built - before) / count:8.0f} bytes")
    print(f"engine state per device, with token:       {(after_auth - before) / count:8.0f} bytes")
    print(f"  of which the JWT string:                 {sys.getsizeof(TOKEN.decode()):8d} bytes")
    print(f"CPU per device, auth + inventory + poll:   {first_cycle / count * 1e3:8.3f} ms")
    print(f"CPU per device, one further poll:          {poll_cycle / count * 1e3:8.3f} ms")
    print(
        f"100,000 idle devices, engine state:        "
        f"{(after_auth - before) / count * 100_000 / 2**20:8.1f} MiB"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
