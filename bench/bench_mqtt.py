"""MQTT publishing: 1,000 device sessions at 10,000 messages/s in total from one process, against
a bare paho-mqtt publisher loop in the same run (the ceiling), against one real Mosquitto.

Phase 1 (devices): N `Session`s on the gevent loop, each publishing at RATE/N per second from its
own greenlet through the harness clock (which records scheduler lag); QoS 0, then QoS 1.
Phase 2 (bare): one paho client on its own network loop publishing the same payloads as fast as
it can for the same time, QoS 0 and 1. Reported: achieved messages/s, scheduler-lag p99, CPU
seconds per 1,000 messages, and the devices' CPU per message as a ratio of the bare loop's.

    python bench/bench_mqtt.py --devices 1000 --rate 10000 --seconds 6
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gevent  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from locust.event import Events  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "telemetry"))
from mqtt_broker import running_broker  # noqa: E402

from mendersim.harness.clock import GeventClock, LagHistogram, percentile_s  # noqa: E402
from mendersim.telemetry.gevent_loop import GeventMqttLoop  # noqa: E402
from mendersim.telemetry.session import Session  # noqa: E402
from mendersim.telemetry.settings import MqttSettings  # noqa: E402

PAYLOAD = json.dumps({"device": "industrial-000000", "stream": "vibration", "unit": "mm/s",
                      "seq": 1, "readings": [[1796166250.0, 2.8123]]}).encode()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def devices_phase(port: int, devices: int, rate: float, seconds: float, qos: int) -> dict:
    events = Events()
    acked = [0]
    events.request.add_listener(
        lambda name, exception, **_: acked.__setitem__(0, acked[0] + (
            name.startswith("mqtt publish") and exception is None)))
    env = SimpleNamespace(events=events)
    loop = GeventMqttLoop()
    settings = MqttSettings(host="127.0.0.1", port=port, clean_start=True, buffer=100_000)
    sessions = [Session(env, loop, settings, f"bench-q{qos}-{i:05d}", "bench")
                for i in range(devices)]
    for s in sessions:
        s.start()
    deadline = time.monotonic() + 60
    while sum(s.connected for s in sessions) < devices and time.monotonic() < deadline:
        gevent.sleep(0.1)
    connected = sum(s.connected for s in sessions)
    lag = LagHistogram()
    clock = GeventClock(lag)
    period = devices / rate
    stop_at = time.monotonic() + seconds

    def publish(session: Session, offset: float) -> None:
        clock.sleep(offset)
        topic = f"{session.root}/telemetry/vibration"
        while time.monotonic() < stop_at:
            session.publish("vibration", topic, PAYLOAD, qos)
            clock.sleep(period)

    start_cpu, started = cpu(), time.monotonic()
    greenlets = [gevent.spawn(publish, s, period * i / devices) for i, s in enumerate(sessions)]
    gevent.joinall(greenlets)
    gevent.sleep(0.5)  # acknowledgements in flight
    elapsed, used = time.monotonic() - started, cpu() - start_cpu
    for s in sessions:
        s.stop()
    gevent.sleep(0.5)
    return {"devices": devices, "connected": connected, "qos": qos, "msgs": acked[0],
            "msg_per_s": round(acked[0] / elapsed), "lag_p99_s": percentile_s(lag.counts, 0.99),
            "cpu_s_per_1000": round(used / max(acked[0], 1) * 1000, 4)}


def bare_phase(port: int, seconds: float, qos: int) -> dict:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{qos}")
    client.max_inflight_messages_set(1000)
    acked = [0]
    client.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start_cpu, started = cpu(), time.monotonic()
    stop_at = started + seconds
    while time.monotonic() < stop_at:
        for _ in range(100):
            client.publish("bare/telemetry/vibration", PAYLOAD, qos=qos)
        gevent.sleep(0)
        while len(client._out_messages) > 2000:  # keep the queue bounded at QoS 1
            gevent.sleep(0.001)
    elapsed, used = time.monotonic() - started, cpu() - start_cpu
    client.disconnect()
    client.loop_stop()
    return {"qos": qos, "msgs": acked[0], "msg_per_s": round(acked[0] / elapsed),
            "cpu_s_per_1000": round(used / max(acked[0], 1) * 1000, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp)) as broker:
        results = []
        for qos in (0, 1):
            dev = devices_phase(broker.port, args.devices, args.rate, args.seconds, qos)
            bare = bare_phase(broker.port, args.seconds, qos)
            dev["cpu_ratio_to_bare"] = round(dev["cpu_s_per_1000"] / bare["cpu_s_per_1000"], 2)
            results.append({"devices": dev, "bare": bare})
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
