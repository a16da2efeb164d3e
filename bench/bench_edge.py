"""Edge processing: gateways of the shipped `iot-gateway` profile, each with N child sensors,
processing their readings in one process against one real Mosquitto; then the same sensors
streaming every reading raw, in the same run, as the comparison.

Edge phases: G `Gateway`s on the gevent loop, on a time scale that makes their sensors produce
RATE readings per second in all, once per rate given. Reported: readings/s taken, messages/s
out, the reduction ratio (readings over messages), `edge latency` p50/p99/max (the gateway
taking the reading behind a message, or closing its window, to the message's hand-over to the
MQTT client), scheduler-lag p99 and max (how late the gateways woke for their readings), and
CPU seconds per 1,000 readings.
Raw phase: the same G x N sensors as plain devices (`Streaming`, one session each) sending each
reading as a message, at RAW_RATE readings/s (one process cannot publish every reading of the
higher rates). Reported: readings/s, lag and CPU per 1,000 readings; then, per reading, the
edge phases' messages and CPU as ratios of the raw phase's.

    python bench/bench_edge.py --gateways 100 --children 8 --rates 5000,10000,20000 \
        --raw-rate 2000 --seconds 20
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gevent  # noqa: E402
from locust.event import Events  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "telemetry"))
from mqtt_broker import running_broker  # noqa: E402

from mendersim.fleet.profiles import load_profile  # noqa: E402
from mendersim.harness.worker.clock import GeventClock, LagHistogram, percentile_s  # noqa: E402
from mendersim.paths import profiles_root  # noqa: E402
from mendersim.telemetry import spec as telemetry_spec  # noqa: E402
from mendersim.telemetry.gateway import Gateway, child_id  # noqa: E402
from mendersim.telemetry.gevent_loop import GeventMqttLoop  # noqa: E402
from mendersim.telemetry.sensors import DeviceSensors  # noqa: E402
from mendersim.telemetry.session import Session  # noqa: E402
from mendersim.telemetry.settings import MqttSettings  # noqa: E402
from mendersim.telemetry.streaming import Streaming  # noqa: E402

SEED = 42


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def gateway_spec(children: int) -> telemetry_spec.TelemetrySpec:
    profile = load_profile(profiles_root() / "industries" / "iot-gateway.yaml")
    spec = telemetry_spec.from_profile(profile)
    assert spec is not None and spec.gateway is not None
    return dataclasses.replace(spec, gateway=dataclasses.replace(spec.gateway, children=children))


def time_scale(spec: telemetry_spec.TelemetrySpec, sensors: int, rate: float) -> float:
    """Real seconds per simulated second so that `sensors` produce `rate` readings/s."""
    per_sim_second = sensors * sum(1 / s.interval_s for s in spec.streams)
    return per_sim_second / rate


def connect(sessions: list[Session]) -> int:
    for s in sessions:
        s.start()
    deadline = time.monotonic() + 60
    while sum(s.connected for s in sessions) < len(sessions) and time.monotonic() < deadline:
        gevent.sleep(0.1)
    return sum(s.connected for s in sessions)


def edge_phase(port: int, gateways: int, children: int, rate: float, seconds: float) -> dict:
    spec = gateway_spec(children)
    scale = time_scale(spec, gateways * children, rate)
    events = Events()
    latencies: list[float] = []
    published = [0]

    def on_request(name, response_time, exception, **_):
        if name == "edge latency":
            latencies.append(response_time)
        elif name.startswith("mqtt publish edge") and exception is None:
            published[0] += 1

    events.request.add_listener(on_request)
    env = SimpleNamespace(events=events)
    loop = GeventMqttLoop()
    settings = MqttSettings(host="127.0.0.1", port=port, clean_start=True, buffer=100_000)
    sessions = [
        Session(env, loop, settings, f"bench-gw-{i:04d}", "iot-gateway") for i in range(gateways)
    ]
    connected = connect(sessions)
    lag = LagHistogram()
    clock = GeventClock(lag)
    units = [
        Gateway(s, spec, s.device_id, {}, SEED, origin=time.time(), time_scale=scale, clock=clock)
        for s in sessions
    ]
    start_cpu, started = cpu(), time.monotonic()
    for unit in units:
        unit.start()
    gevent.sleep(seconds)
    for unit in units:
        unit.stop()
    elapsed, used = time.monotonic() - started, cpu() - start_cpu
    gevent.sleep(1.0)  # acknowledgements in flight
    for s in sessions:
        s.stop()
    readings = sum(u.readings for u in units)
    selected = sum(u.selected for u in units)
    return {
        "phase": "edge",
        "gateways": gateways,
        "children": children,
        "connected": connected,
        "time_scale": round(scale, 5),
        "readings": readings,
        "readings_per_s": round(readings / elapsed),
        "messages": selected,
        "messages_per_s": round(selected / elapsed),
        "acknowledged": published[0],
        "reduction_ratio": round(readings / max(selected, 1), 1),
        "latency_p50_ms": round(percentile(latencies, 0.50), 2),
        "latency_p99_ms": round(percentile(latencies, 0.99), 2),
        "latency_max_ms": round(max(latencies, default=0.0), 2),
        "lag_p99_s": percentile_s(lag.counts, 0.99),
        "lag_max_s": round(lag.max_s, 3),
        "cpu_s_per_1000_readings": round(used / max(readings, 1) * 1000, 4),
    }


def raw_phase(port: int, gateways: int, children: int, rate: float, seconds: float) -> dict:
    spec = gateway_spec(children)
    scale = time_scale(spec, gateways * children, rate)
    events = Events()
    counts = {"ok": 0, "failed": 0}

    def on_request(name, exception, **_):
        if name.startswith("mqtt publish "):
            counts["failed" if exception else "ok"] += 1

    events.request.add_listener(on_request)
    env = SimpleNamespace(events=events)
    loop = GeventMqttLoop()
    settings = MqttSettings(host="127.0.0.1", port=port, clean_start=True, buffer=100_000)
    ids = [child_id(f"bench-gw-{g:04d}", i) for g in range(gateways) for i in range(children)]
    sessions = [Session(env, loop, settings, device, "iot-gateway") for device in ids]
    connected = connect(sessions)
    lag = LagHistogram()
    clock = GeventClock(lag)
    origin = time.time()
    streams = [
        Streaming(
            s,
            DeviceSensors(spec, s.device_id, {}, SEED),
            origin=origin,
            time_scale=scale,
            clock=clock,
        )
        for s in sessions
    ]
    start_cpu, started = cpu(), time.monotonic()
    for stream in streams:
        stream.start()
    gevent.sleep(seconds)
    for stream in streams:
        stream.stop()
    elapsed, used = time.monotonic() - started, cpu() - start_cpu
    gevent.sleep(1.0)
    for s in sessions:
        s.stop()
    messages = counts["ok"] + counts["failed"]
    return {
        "phase": "raw",
        "sensors": len(ids),
        "connected": connected,
        "readings_per_s": round(messages / elapsed),
        "messages_per_s": round(messages / elapsed),
        "failed": counts["failed"],
        "lag_p99_s": percentile_s(lag.counts, 0.99),
        "cpu_s_per_1000_readings": round(used / max(messages, 1) * 1000, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=100)
    parser.add_argument("--children", type=int, default=8)
    parser.add_argument("--rates", default="5000,10000,20000", help="readings/s in all, per phase")
    parser.add_argument("--raw-rate", type=float, default=2000, help="readings/s, raw phase")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp)) as broker:
        edges = []
        for rate in rates:
            edges.append(edge_phase(broker.port, args.gateways, args.children, rate, args.seconds))
            print(json.dumps(edges[-1]), flush=True)
        raw = raw_phase(broker.port, args.gateways, args.children, args.raw_rate, args.seconds)
        print(json.dumps(raw), flush=True)
        for edge in edges:
            print(
                json.dumps(
                    {
                        "rate": edge["readings_per_s"],
                        "messages_per_reading_edge_over_raw": round(1 / edge["reduction_ratio"], 4),
                        "cpu_per_reading_edge_over_raw": round(
                            edge["cpu_s_per_1000_readings"] / raw["cpu_s_per_1000_readings"], 3
                        ),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
