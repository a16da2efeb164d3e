"""What a device does with a command from the IoT platform, and the acknowledgement it sends.

A command is JSON `{"id": ..., "command": ping|set-config|run-diagnostics|reboot, "args": {},
"sent": unix-seconds}` on `<root>/commands`; the ack is `{"id", "command", "status", "result"}`
on `<root>/acks` (QoS 1). `mqtt command delivery` measures sent → received, which for a device
that was offline includes the time the broker held the command. A reboot goes through the
device engine's own reboot (`Device.reboot`): once the exchange in flight is over, the MQTT link
drops (the broker sends the will), the device makes no request for its profile's reboot time,
then authenticates again, sends inventory and polls; the ack follows once MQTT is back.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

import gevent

from mendersim.harness.reporting import stats

COMMANDS = ("ping", "set-config", "run-diagnostics", "reboot")
DELIVERY = "mqtt command delivery"
SEEN_IDS = 64
REBOOT_WAIT_S = 30.0  # longest wait for the device's exchange in flight before rebooting


class CommandHandler:
    def __init__(self, device: Any) -> None:
        self.device = device
        self.session: Any = None
        self.config: dict[str, Any] = {}
        self.rebooting = False  # the session stays down meanwhile
        # ids already acted on: QoS 1 redelivers a command whose PUBACK a reboot cut off
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)

    def handle(self, session: Any, command: dict[str, Any]) -> None:
        """Called on the hub: acts at once, or spawns what takes time (a reboot)."""
        command_id = str(command.get("id"))
        if command_id in self._seen:
            return
        self._seen.append(command_id)
        sent = command.get("sent")
        if isinstance(sent, (int, float)):
            stats.fire(
                session.environment,
                "MQTT",
                DELIVERY,
                max(time.time() - sent, 0.0) * 1000.0,
                profile=session.profile,
            )
        name = command.get("command")
        if name == "ping":
            self._ack(command, "ok", {"pong": time.time()})
        elif name == "set-config":
            args = command.get("args")
            if isinstance(args, dict):
                self.config.update(args)
                self._ack(command, "ok", {"config": self.config})
            else:
                self._ack(command, "error", {"reason": "args must be an object"})
        elif name == "run-diagnostics":
            device = self.device
            self._ack(
                command,
                "ok",
                {
                    "status": device.status,
                    "phase": device.phase,
                    "artifact_name": device.record.artifact_name,
                },
            )
        elif name == "reboot":
            if self.device.deploying:
                self._ack(command, "busy", {"phase": self.device.phase})
            else:
                gevent.spawn(self._reboot, command)
        else:
            self._ack(command, "error", {"reason": f"unknown command {name!r}"})

    def _reboot(self, command: dict[str, Any]) -> None:
        device = self.device
        fraction = device._fraction(f"command-reboot-{command.get('id', '')}")
        self.rebooting = True
        gevent.sleep(0.1)  # the command's PUBACK leaves before the link goes down
        # an exchange in flight (a poll, inventory) ends first; a deployment refuses the command
        deadline = time.monotonic() + REBOOT_WAIT_S
        while device.phase != "idle" and time.monotonic() < deadline and not device.stopped:
            gevent.sleep(0.05)
        if device.deploying:  # the poll it was in found a deployment
            self.rebooting = False
            self._ack(command, "busy", {"phase": device.phase})
            return
        self.session.drop()
        try:
            device.reboot(device.behaviour.reboot.pick(fraction))
        finally:
            self.rebooting = False
        while not self.session.connected and not device.stopped:
            gevent.sleep(0.1)
        self._ack(command, "ok", {"rebooted": True})

    def _ack(self, command: dict[str, Any], status: str, result: dict[str, Any]) -> None:
        body = {
            "id": command.get("id"),
            "command": command.get("command"),
            "status": status,
            "result": result,
        }
        self.session.publish("ack", f"{self.session.root}/acks", json.dumps(body).encode(), 1)
