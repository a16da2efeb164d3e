"""How devices reach the MQTT broker: one frozen value per run, built from the harness options."""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOLS = ("5", "3.1.1")
DEFAULT_TOPIC = "mendersim/{profile}/{device}"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int = 1883
    protocol: str = "5"
    username: str = ""
    password: str = ""  # from the environment or a file, never the command line
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive: int = 60
    clean_start: bool = False  # False: persistent session, commands wait for offline devices
    session_expiry: int = 3600  # seconds the broker keeps a persistent session (MQTT 5)
    topic: str = DEFAULT_TOPIC  # a device's topic root; {device} and {profile} are filled in
    qos: int | None = None  # overrides the profiles' QoS
    buffer: int = 1000  # messages a device keeps while disconnected; the rest are counted lost
    truth_file: str = "anomalies.jsonl"

    def root(self, device_id: str, profile: str) -> str:
        return self.topic.format(device=device_id, profile=profile)
