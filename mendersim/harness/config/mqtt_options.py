"""The MQTT options of a run (`--mendersim-mqtt-*`); registered by options.py.

The password comes from `MENDERSIM_MQTT_PASSWORD` or `--mendersim-mqtt-password-file`, never
from the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mendersim.errors import ConfigError
from mendersim.telemetry.commander import Commander, CommandPlan
from mendersim.telemetry.commands import COMMANDS
from mendersim.telemetry.settings import DEFAULT_TOPIC, PROTOCOLS, MqttSettings

PASSWORD_ENV = "MENDERSIM_MQTT_PASSWORD"


def add_arguments(option: Any) -> None:
    """`option(name, **kwargs)` registers one option with its MENDERSIM_* variable."""
    option(
        "--mendersim-mqtt-host",
        default="",
        help="MQTT broker host; devices open MQTT sessions and stream telemetry when set",
    )
    option(
        "--mendersim-mqtt-port",
        type=int,
        default=0,
        help="MQTT broker port (default 1883, or 8883 with TLS)",
    )
    option("--mendersim-mqtt-protocol", choices=PROTOCOLS, default="5", help="MQTT version")
    option("--mendersim-mqtt-username", default="", help="MQTT user name")
    option(
        "--mendersim-mqtt-password-file",
        default="",
        help=f"File holding the MQTT password (or set {PASSWORD_ENV})",
    )
    option("--mendersim-mqtt-tls", action="store_true", default=False, help="MQTT over TLS")
    option("--mendersim-mqtt-ca-file", default="", help="CA bundle for the broker's certificate")
    option("--mendersim-mqtt-cert-file", default="", help="Client certificate (PEM)")
    option("--mendersim-mqtt-key-file", default="", help="Client certificate's key (PEM)")
    option("--mendersim-mqtt-keepalive", type=int, default=60, help="Keep-alive seconds")
    option(
        "--mendersim-mqtt-clean-start",
        action="store_true",
        default=False,
        help="Clean sessions; default: persistent sessions, so commands wait for devices",
    )
    option(
        "--mendersim-mqtt-session-expiry",
        type=int,
        default=3600,
        help="Seconds the broker keeps a persistent session (MQTT 5)",
    )
    option(
        "--mendersim-mqtt-topic",
        default=DEFAULT_TOPIC,
        help="A device's topic root, with {device} and {profile}",
    )
    option(
        "--mendersim-mqtt-qos",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="QoS of every telemetry message (default: the profiles')",
    )
    option(
        "--mendersim-mqtt-buffer",
        type=int,
        default=1000,
        help="Messages a disconnected device keeps; older ones are dropped and counted",
    )
    option(
        "--mendersim-mqtt-commands",
        type=float,
        default=0.0,
        help="Commander scenario: share of the fleet sent a command each round (0 = off)",
    )
    option(
        "--mendersim-mqtt-command",
        choices=COMMANDS,
        default="ping",
        help="The command the commander sends",
    )
    option(
        "--mendersim-mqtt-command-every",
        type=float,
        default=30.0,
        help="Seconds between the commander's rounds",
    )
    option(
        "--mendersim-mqtt-command-timeout",
        type=float,
        default=10.0,
        help="Seconds before an unanswered command is sent again (twice), then a timeout",
    )
    option(
        "--mendersim-telemetry-truth",
        default="anomalies.jsonl",
        help="Ground-truth file of the injected anomalies (JSON lines)",
    )


def settings_from(parsed: Any) -> MqttSettings | None:
    """The run's MQTT settings, or None when no broker is given; ConfigError names the option."""

    def get(name: str) -> Any:
        return getattr(parsed, "mendersim_" + name, None)

    host = str(get("mqtt_host") or "")
    if not host:
        return None
    password = os.environ.get(PASSWORD_ENV, "")
    if get("mqtt_password_file"):
        path = Path(get("mqtt_password_file"))
        try:
            password = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError("--mendersim-mqtt-password-file", f"{path}: {exc.strerror}") from None
    for name in ("ca_file", "cert_file", "key_file"):
        value = get("mqtt_" + name)
        if value and not Path(value).is_file():
            raise ConfigError(
                f"--mendersim-mqtt-{name.replace('_', '-')}", f"{value}: no such file"
            )
    topic = str(get("mqtt_topic") or DEFAULT_TOPIC)
    try:
        topic.format(device="d", profile="p")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError("--mendersim-mqtt-topic", f"unknown placeholder {exc}") from None
    if "{device}" not in topic:
        raise ConfigError("--mendersim-mqtt-topic", "must contain {device}")
    tls = bool(get("mqtt_tls"))
    port = int(get("mqtt_port") or (8883 if tls else 1883))
    keepalive, buffer = int(get("mqtt_keepalive") or 60), int(get("mqtt_buffer") or 1000)
    for name, value in (("port", port), ("keepalive", keepalive), ("buffer", buffer)):
        if value <= 0:
            raise ConfigError(f"--mendersim-mqtt-{name}", "must be more than zero")
    return MqttSettings(
        host=host,
        port=port,
        protocol=str(get("mqtt_protocol") or "5"),
        username=str(get("mqtt_username") or ""),
        password=password,
        tls=tls,
        ca_file=str(get("mqtt_ca_file") or ""),
        cert_file=str(get("mqtt_cert_file") or ""),
        key_file=str(get("mqtt_key_file") or ""),
        keepalive=keepalive,
        clean_start=bool(get("mqtt_clean_start")),
        session_expiry=int(get("mqtt_session_expiry") or 0),
        topic=topic,
        qos=get("mqtt_qos"),
        buffer=buffer,
        truth_file=str(get("telemetry_truth") or "anomalies.jsonl"),
    )


def commander_for(environment: Any, seed: int) -> Commander | None:
    """The commander's client when a broker is given: its rounds when a share is given, and
    the Fleet tab's "Command" action in any case."""
    parsed = environment.parsed_options
    share = float(getattr(parsed, "mendersim_mqtt_commands", 0) or 0)
    if not 0 <= share <= 1:
        raise ConfigError("--mendersim-mqtt-commands", f"{share} is not in (0, 1]")
    settings = settings_from(parsed)
    if settings is None:
        if share:
            raise ConfigError("--mendersim-mqtt-commands", "needs --mendersim-mqtt-host")
        return None
    every = float(parsed.mendersim_mqtt_command_every)
    timeout = float(parsed.mendersim_mqtt_command_timeout)
    if every <= 0 or timeout <= 0:
        raise ConfigError("--mendersim-mqtt-command-every", "times must be more than zero")
    plan = CommandPlan(
        command=str(parsed.mendersim_mqtt_command),
        share=share,
        every_s=every,
        timeout_s=timeout,
        seed=seed,
    )
    return Commander(environment, settings, plan)
