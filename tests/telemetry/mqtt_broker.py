"""A real Mosquitto on a free port with its own configuration, for the telemetry tests."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    def __init__(
        self,
        folder: Path,
        *,
        password: str | None = None,
        max_queued: int = 100000,
        persistence: bool = False,
    ) -> None:
        self.folder = folder
        # kept sessions and their queued messages survive a restart, as on a platform's broker
        self.persistence = persistence
        self.port = free_port()
        self.password = password
        self.max_queued = max_queued  # QoS 1/2 messages the broker queues per slow subscriber
        self.process: subprocess.Popen | None = None

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.folder}/",
            f"max_queued_messages {self.max_queued}",
            "log_dest stderr",
            # started as root, mosquitto would switch to its own user and not read our files
            f"user {getpass.getuser()}",
        ]
        if self.password is not None:
            passwd = self.folder / "passwd"
            passwd.write_text("")
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), "device", self.password],
                check=True,
                capture_output=True,
                timeout=30,
            )
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        path = self.folder / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        config = self._config()
        log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def running_broker(folder: Path, **kwargs):
    broker = Broker(folder, **kwargs)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Subscriber:
    """A plain paho client in its own thread: what an IoT platform receives."""

    def __init__(self, port: int, topic: str, qos: int = 2, *, session: str = "") -> None:
        """`session` names a session the broker keeps for an hour while this client is away,
        so what it accepted for the subscriber reaches it after a reconnect."""
        self.messages: list[mqtt.MQTTMessage] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=session, protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=qos)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        kept = Properties(PacketTypes.CONNECT)
        if session:
            kept.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, properties=kept)
        self.client.loop_start()
        assert self._ready.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
