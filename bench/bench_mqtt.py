"""MQTT from one process against one real Mosquitto: telemetry publishing against a bare paho loop
(the ceiling, same run), command round trips, telemetry generation cost, and open sessions.

- publish: N devices, each a `Session` and a `Streaming` of one real sensor stream (readings,
  anomalies, JSON encoding) at RATE/N messages per second, on the gevent loop through the
  harness clock (which records scheduler lag), with Locust's request statistics listening, as
  in a run; QoS 0, then QoS 1. Then one bare paho client on its own network loop publishing the
  same kind of payload as fast as it can for the same time. Reported: messages/s acknowledged
  (QoS 0: handed to the socket), scheduler-lag p99, CPU seconds per 1,000 messages, and the
  devices' rate and CPU per message as ratios of the bare loop's.
- commands (first, before other phases leave retained births of departed devices): N devices
  streaming at RATE (QoS 0) while the commander scenario pings a share of them every second;
  `mqtt command` (sent to acknowledged) p50/p99 and failures.
- generation: CPU per reading of every shipped profile's streams (models, anomalies, encoding),
  and per device at the profile's own intervals.
- sessions: SESSIONS idle device sessions opened at once; how many got connected, file
  descriptors in use, RSS per session, and the scheduler lag while they are held.

    python bench/bench_mqtt.py --devices 1000 --rate 10000 --seconds 6 --sessions 19000
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gevent  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402
from locust.event import Events  # noqa: E402
from locust.stats import RequestStats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "telemetry"))
from mqtt_broker import running_broker  # noqa: E402

from mendersim.harness.worker.clock import GeventClock, LagHistogram, percentile_s  # noqa: E402
from mendersim.schedule import Schedule  # noqa: E402
from mendersim.telemetry import payload  # noqa: E402
from mendersim.telemetry import spec as telemetry_spec  # noqa: E402
from mendersim.telemetry.commander import COMMAND, Commander, CommandPlan  # noqa: E402
from mendersim.telemetry.commands import CommandHandler  # noqa: E402
from mendersim.telemetry.gevent_loop import GeventMqttLoop, use_native_locks  # noqa: E402
from mendersim.telemetry.sensors import DeviceSensors  # noqa: E402
from mendersim.telemetry.session import Session  # noqa: E402
from mendersim.telemetry.settings import MqttSettings  # noqa: E402
from mendersim.telemetry.streaming import Streaming  # noqa: E402

STREAM = {"name": "vibration", "unit": "mm/s", "base": 2.8, "noise": 0.4, "drift_per_day": 0.02}
INTERVAL_S = 60.0  # simulated; the time scale makes it RATE/N per second in real time
SAMPLE = payload.encode(
    payload.Message("industrial-000000", "vibration", "mm/s", 1, ((1796166250.0, 2.8123),)),
    "json",
)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_spec() -> telemetry_spec.TelemetrySpec:
    section = {"interval_s": INTERVAL_S, "streams": [STREAM], "anomalies": {"rate": 0.05}}
    return telemetry_spec.from_profile({"name": "bench", "telemetry": section})


class Fleet:
    """N device sessions on one loop, reporting to Locust's statistics as a run does."""

    def __init__(self, port: int, devices: int, tag: str, protocol: str) -> None:
        self.events = Events()
        self.stats = RequestStats()
        self.published = 0

        def on_request(request_type, name, response_time, response_length, exception=None, **_):
            self.stats.log_request(request_type, name, response_time, response_length)
            if exception:
                self.stats.log_error(request_type, name, exception)
            elif name == "mqtt publish vibration":
                self.published += 1

        self.events.request.add_listener(on_request)
        self.env = SimpleNamespace(events=self.events)
        self.loop = GeventMqttLoop()
        settings = MqttSettings(host="127.0.0.1", port=port, clean_start=True, protocol=protocol)
        self.sessions = [
            Session(self.env, self.loop, settings, f"bench-{tag}-{i:05d}", "bench")
            for i in range(devices)
        ]
        self.streams: list[Streaming] = []
        self.lag = LagHistogram()

    def connect(self, timeout_s: float = 120.0) -> int:
        for session in self.sessions:
            session.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(s.connected for s in self.sessions) == len(self.sessions):
                break
            gevent.sleep(0.2)
        return sum(s.connected for s in self.sessions)

    def stream(self, rate: float, qos: int) -> None:
        spec, schedule = bench_spec(), Schedule(GeventClock(self.lag))
        scale = len(self.sessions) / rate / INTERVAL_S
        for session in self.sessions:
            sensors = DeviceSensors(spec, session.device_id, {}, 42)
            streaming = Streaming(
                session, sensors, schedule, origin=time.time(), time_scale=scale, qos=qos
            )
            streaming.start()
            self.streams.append(streaming)

    def stop(self) -> None:
        for streaming in self.streams:
            streaming.stop()
        for session in self.sessions:
            session.stop()
        gevent.sleep(0.5)


def publish_phase(port: int, devices: int, rate: float, seconds: float, qos: int, proto: str):
    fleet = Fleet(port, devices, f"q{qos}", proto)
    connected = fleet.connect()
    fleet.stream(rate, qos)
    gevent.sleep(1.0)  # every device has started its timeline
    fleet.lag.take()
    published, start_cpu, started = fleet.published, cpu(), time.monotonic()
    gevent.sleep(seconds)
    elapsed, used = time.monotonic() - started, cpu() - start_cpu
    published = fleet.published - published
    counts, _ = fleet.lag.take()
    fleet.stop()
    return {
        "devices": devices,
        "connected": connected,
        "qos": qos,
        "offered_msg_per_s": rate,
        "msg_per_s": round(published / elapsed),
        "lag_p99_s": round(percentile_s(counts, 0.99), 3),
        "cpu_s_per_1000": round(used / max(published, 1) * 1000, 4),
        "cpu_share": round(used / elapsed, 2),
    }


def bare_phase(port: int, seconds: float, qos: int, proto: str) -> dict:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bare-{qos}",
        protocol=mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311,
    )
    client.max_inflight_messages_set(20)  # the broker's receive maximum (MQTT 5), as the devices
    use_native_locks(client)  # as fast as paho goes in this process: the devices' locks too
    acked = [0]
    client.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    gevent.sleep(0.5)
    start_cpu, started = cpu(), time.monotonic()
    stop_at = started + seconds
    while time.monotonic() < stop_at:
        for _ in range(100):
            client.publish("bare/telemetry/vibration", SAMPLE, qos=qos)
        gevent.sleep(0)
        # keep the queue bounded at QoS 1
        while len(client._out_messages) > 2000 and time.monotonic() < stop_at:
            gevent.sleep(0.001)
    elapsed, used = time.monotonic() - started, cpu() - start_cpu
    client.disconnect()
    client.loop_stop()
    return {
        "qos": qos,
        "msg_per_s": round(acked[0] / elapsed),
        "cpu_s_per_1000": round(used / max(acked[0], 1) * 1000, 4),
    }


def command_phase(port: int, devices: int, rate: float, seconds: float, share: float, proto: str):
    fleet = Fleet(port, devices, "cmd", proto)
    for session in fleet.sessions:
        handler = CommandHandler(SimpleNamespace(deploying=False))
        handler.session = session
        session._on_command = handler.handle
    connected = fleet.connect()
    fleet.stream(rate, 0)
    settings = MqttSettings(host="127.0.0.1", port=port, protocol=proto)
    plan = CommandPlan(command="ping", share=share, every_s=1.0, timeout_s=5.0, seed=1)
    commander = Commander(SimpleNamespace(events=fleet.events), settings, plan)
    commander.start()
    deadline = time.monotonic() + 30
    while len(commander.devices) < devices and time.monotonic() < deadline:
        gevent.sleep(0.2)  # the commander learns the fleet from the retained births
    known = len(commander.devices)
    fleet.stats.get(COMMAND, "MQTT").reset()
    fleet.lag.take()
    gevent.sleep(seconds)
    commander.stop()
    counts, _ = fleet.lag.take()
    entry = fleet.stats.get(COMMAND, "MQTT")
    fleet.stop()
    return {
        "devices": devices,
        "connected": connected,
        "known_to_commander": known,
        "telemetry_msg_per_s": rate,
        "commands_per_round": round(share * devices),
        "commands": entry.num_requests,
        "failures": entry.num_failures,
        "rtt_p50_ms": entry.get_response_time_percentile(0.5),
        "rtt_p99_ms": entry.get_response_time_percentile(0.99),
        "lag_p99_s": round(percentile_s(counts, 0.99), 3),
    }


def generation_phase(devices: int = 200, hours: float = 2.0) -> list[dict]:
    """CPU per reading and per device of every shipped profile, on a simulated timeline."""
    results = []
    for path in sorted((REPO / "profiles" / "industries").glob("*.yaml")):
        spec = telemetry_spec.from_profile(yaml.safe_load(path.read_text()))
        if spec is None:
            continue
        readings, start_cpu = 0, cpu()
        for d in range(devices):
            sensors = DeviceSensors(spec, f"{spec.profile}-{d:06d}", {}, 42)
            for stream in spec.streams:
                t, end, batch, seq = 1796166000.0, 1796166000.0 + hours * 3600, [], 0
                while t < end:
                    value = sensors.read(stream, t)
                    readings += 1
                    if value is not None:
                        batch.append((t, value))
                    if len(batch) >= spec.batch:
                        seq += 1
                        message = payload.Message(
                            sensors.device_id, stream.name, "", seq, tuple(batch)
                        )
                        payload.encode(message, spec.encoding)
                        batch = []
                    t += stream.interval_s
        per_reading = (cpu() - start_cpu) / readings
        # readings per device-second (a gateway reads every stream of each child sensor; its
        # edge rules are not counted here)
        children = spec.gateway.children if spec.gateway is not None else 1
        per_second = children * sum(1 / s.interval_s for s in spec.streams)
        results.append(
            {
                "profile": spec.profile,
                "us_per_reading": round(per_reading * 1e6, 1),
                "readings_per_device_s": round(per_second, 3),
                "cpu_us_per_device_s": round(per_reading * per_second * 1e6, 2),
                "devices_per_core": int(1 / (per_reading * per_second)),
            }
        )
    return results


def sessions_phase(port: int, sessions: int, proto: str) -> dict:
    process = psutil.Process()
    fds_before, rss_before = process.num_fds(), process.memory_info().rss
    fleet = Fleet(port, sessions, "idle", proto)
    started = time.monotonic()
    connected = fleet.connect(timeout_s=300)
    connect_s = time.monotonic() - started
    clock = GeventClock(fleet.lag)
    fleet.lag.take()
    probes = [gevent.spawn(lambda: [clock.sleep(0.5) for _ in range(10)]) for _ in range(100)]
    gevent.joinall(probes)  # 5 s holding every session open, keep-alives included
    counts, _ = fleet.lag.take()
    fds, rss = process.num_fds(), process.memory_info().rss
    refused = fleet.stats.get("mqtt connect", "MQTT").num_failures
    fleet.stop()
    return {
        "sessions": sessions,
        "connected": connected,
        "connect_failures": refused,
        "connect_s": round(connect_s, 1),
        "fds_before": fds_before,
        "fds_held": fds,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "rss_kb_per_session": round((rss - rss_before) / max(sessions, 1) / 1024, 1),
        "lag_p99_s": round(percentile_s(counts, 0.99), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument(
        "--rate",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[10_000.0],
        help="messages/s in total; a list (10000,7000) runs the publish phase at each",
    )
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--command-share", type=float, default=0.1)
    parser.add_argument("--sessions", type=int, default=0, help="open this many idle sessions")
    parser.add_argument("--phases", default="publish,commands,generation,sessions")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    print(json.dumps({"load_average": os.getloadavg(), "cores": os.cpu_count()}), flush=True)
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp)) as broker:
        if "commands" in phases:
            result = command_phase(
                broker.port,
                args.devices,
                args.rate[0],
                args.seconds,
                args.command_share,
                args.protocol,
            )
            print(json.dumps({"commands": result}), flush=True)
        if "publish" in phases:
            for qos, rate in ((q, r) for q in (0, 1) for r in args.rate):
                dev = publish_phase(
                    broker.port, args.devices, rate, args.seconds, qos, args.protocol
                )
                bare = bare_phase(broker.port, args.seconds, qos, args.protocol)
                dev["rate_ratio_to_bare"] = round(dev["msg_per_s"] / max(bare["msg_per_s"], 1), 2)
                dev["cpu_ratio_to_bare"] = round(dev["cpu_s_per_1000"] / bare["cpu_s_per_1000"], 2)
                print(json.dumps({"publish": dev, "bare": bare}), flush=True)
        if "sessions" in phases and args.sessions:
            print(
                json.dumps({"sessions": sessions_phase(broker.port, args.sessions, args.protocol)}),
                flush=True,
            )
    if "generation" in phases:
        for row in generation_phase():
            print(json.dumps({"generation": row}), flush=True)


if __name__ == "__main__":
    main()
