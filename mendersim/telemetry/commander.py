"""The commander scenario: an IoT platform sending commands to a share of the fleet over MQTT.

It learns the fleet from the devices' retained `status` messages, and every round sends the
command to the share of known devices picked by the seed (offline ones too: with persistent
sessions the broker delivers when they are back). With a share of 0 it sends no rounds of its
own; the Fleet tab's "Command" action (`send`) sends one round per click. `mqtt command`
measures sent → ack; an ack whose status is not `ok` is a failure named by that status; an
unanswered command is sent again after the timeout, up to `retries` times, then counted as a
`timeout` failure.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import gevent
import paho.mqtt.client as mqtt

from mendersim.device import decide
from mendersim.harness.reporting import stats
from mendersim.telemetry.gevent_loop import GeventMqttLoop
from mendersim.telemetry.session import MQTT, MqttError
from mendersim.telemetry.settings import MqttSettings

log = logging.getLogger(__name__)

COMMAND = "mqtt command"


@dataclass(frozen=True, slots=True)
class CommandPlan:
    command: str = "ping"
    share: float = 0.1
    every_s: float = 30.0
    timeout_s: float = 10.0
    retries: int = 2
    seed: int = 0


class Commander:
    def __init__(self, environment: Any, settings: MqttSettings, plan: CommandPlan) -> None:
        self.environment = environment
        self.settings = settings
        self.plan = plan
        self.devices: dict[str, str] = {}  # device id -> topic root
        # id -> [root, first sent, last sent, tries, command, args]
        self.pending: dict[str, list[Any]] = {}
        self._sends = 0
        self._loop = GeventMqttLoop()
        wildcard = settings.topic.replace("{device}", "+").replace("{profile}", "+")
        self._status, self._acks = f"{wildcard}/status", f"{wildcard}/acks"
        self._greenlets: list[gevent.Greenlet] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"mendersim-commander-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311,
        )
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password or None)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._loop.attach(self.client)

    def start(self) -> None:
        self.client.connect(self.settings.host, self.settings.port, self.settings.keepalive)
        self._greenlets = [gevent.spawn(self._expiring)]
        if self.plan.share > 0:
            self._greenlets.append(gevent.spawn(self._rounds))

    def stop(self) -> None:
        gevent.killall(self._greenlets, block=False)
        self._greenlets = []
        self.client.disconnect()
        self._loop.detach(self.client)

    def send(self, command: str, share: float, args: dict[str, Any] | None = None) -> int:
        """One round now, to `share` of the known devices; how many were sent the command."""
        self._sends += 1
        return self._round(command, share, args or {}, f"send-{self._sends}")

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe([(self._status, 1), (self._acks, 1)])

    def _on_message(self, client, userdata, message) -> None:
        root, _, leaf = message.topic.rpartition("/")
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if leaf == "status" and isinstance(body, dict) and body.get("device"):
            self.devices[str(body["device"])] = root
        elif leaf == "acks" and isinstance(body, dict):
            entry = self.pending.pop(str(body.get("id")), None)
            if entry is not None:
                status = body.get("status")
                failure = None if status == "ok" else MqttError(str(status))
                stats.fire(
                    self.environment,
                    MQTT,
                    COMMAND,
                    (time.time() - entry[1]) * 1000.0,
                    exception=failure,
                )

    def _rounds(self) -> None:
        round_no = 0
        while True:
            gevent.sleep(self.plan.every_s)
            round_no += 1
            self._round(self.plan.command, self.plan.share, {}, str(round_no))

    def _round(self, command: str, share: float, args: dict[str, Any], key: str) -> int:
        sent = 0
        for device, root in sorted(self.devices.items()):
            if decide.fraction(self.plan.seed, device, "command", key) < share:
                command_id = uuid.uuid4().hex
                now = time.time()
                self.pending[command_id] = [root, now, now, 1, command, args]
                self._send(command_id, self.pending[command_id])
                sent += 1
        return sent

    def _send(self, command_id: str, entry: list[Any]) -> None:
        root, first, _, _, command, args = entry
        body = {"id": command_id, "command": command, "args": args, "sent": first}
        self.client.publish(f"{root}/commands", json.dumps(body), qos=1)

    def _expiring(self) -> None:
        while True:
            gevent.sleep(min(1.0, self.plan.timeout_s))
            self._expire()

    def _expire(self) -> None:
        now = time.time()
        for command_id, entry in list(self.pending.items()):
            first, last, tries = entry[1:4]
            if now - last < self.plan.timeout_s:
                continue
            if tries <= self.plan.retries:
                entry[2], entry[3] = now, tries + 1
                self._send(command_id, entry)
            else:
                del self.pending[command_id]
                stats.fire(
                    self.environment,
                    MQTT,
                    COMMAND,
                    (now - first) * 1000.0,
                    exception=MqttError("timeout"),
                )
