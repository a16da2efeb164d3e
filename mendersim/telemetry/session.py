"""One device's MQTT session: connect with backoff, birth and last will, publish, commands.

Statistics (request_type MQTT) are per step, never per device or topic: `mqtt connect`,
`mqtt publish <stream>` (QoS 0: handed to the socket; QoS 1/2: until the broker's
acknowledgement), `mqtt disconnect` (a lost connection) and `mqtt overflow` (a message dropped
because the outbox of a disconnected device was full). A broker refusing the credentials stops
the device's attempts: one error, not a retry storm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mendersim.device import decide
from mendersim.harness.reporting import stats
from mendersim.telemetry.gevent_loop import GeventMqttLoop
from mendersim.telemetry.settings import MqttSettings

log = logging.getLogger(__name__)

MQTT = "MQTT"
CONNECT = "mqtt connect"
DISCONNECT = "mqtt disconnect"
OVERFLOW = "mqtt overflow"
BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 60.0
# CONNACK reasons that retrying cannot fix (MQTT 5 codes; 3.1.1 codes 4 and 5 map onto them).
REFUSED_FOR_GOOD = {
    "Bad user name or password",
    "Not authorized",
    "Banned",
    "Client identifier not valid",
    "Unsupported protocol version",
}


def publish_step(stream: str) -> str:
    return f"mqtt publish {stream}"


class MqttError(Exception):
    """What Locust's failure table shows for an MQTT failure: a reason, never a topic."""

    @property
    def stats_kind(self) -> str:
        """The reason as InfluxDB's error kind, e.g. `mqtt_offline`, `mqtt_no_connack`."""
        return "mqtt_" + "_".join(re.findall(r"[a-z0-9]+", str(self).lower()))


class Session:
    def __init__(
        self,
        environment: Any,
        loop: GeventMqttLoop,
        settings: MqttSettings,
        device_id: str,
        profile: str,
        *,
        seed: int = 0,
        birth: dict[str, Any] | None = None,
        on_command: Callable[[Session, dict[str, Any]], None] | None = None,
        offline: Callable[[], bool] | None = None,
        stalls: Callable[[], bool] | None = None,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        """`offline`: the device's link is in an outage (connects fail, the session drops);
        `stalls`: the link's loss decides that the next exchange times out; `paused`: the device
        is down (rebooting) and makes no attempt at all."""
        self.environment = environment
        self.settings = settings
        self.device_id = device_id
        self.profile = profile
        self.root = settings.root(device_id, profile)
        self._loop = loop
        self._seed = seed
        self._birth = birth or {}
        self._on_command = on_command
        self._offline = offline or (lambda: False)
        self._stalls = stalls or (lambda: False)
        self._paused = paused or (lambda: False)
        self._outbox: deque[tuple[str, str, bytes, int, bool]] = deque()
        self._pending: dict[int, tuple[str, float, int]] = {}  # mid -> step, start, size
        self._connect_started = 0.0
        self.connected = False
        self.refused: str | None = None
        self._stopped = False
        self._drop_reason = ""
        self._greenlet: gevent.Greenlet | None = None
        self.client = self._make_client()

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._keep_connected)

    def stop(self) -> None:
        """A clean goodbye: the retained state says offline, and the will is not sent."""
        self._stopped = True
        if self.connected:
            self._publish_raw(f"{self.root}/status", self._status("offline"), 1, True)
            self.client.disconnect()
        self._loop.detach(self.client)
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def drop(self, reason: str = "offline") -> None:
        """The link died (outage, loss, a reboot): close the socket without DISCONNECT, so the
        broker sends the last will."""
        sock = self.client.socket()
        if sock is not None:
            self._drop_reason = reason
            # paho reads the end of the stream and reports the loss as the broker does
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- publishing ----------------------------------------------------------------------------

    @property
    def unacknowledged(self) -> int:
        """QoS 1 and 2 messages sent and not yet acknowledged (paho's queue for them is bounded)."""
        return len(self._pending)

    def publish(self, stream: str, topic: str, payload: bytes, qos: int, retain: bool = False):
        """Send now, or keep in the bounded outbox (overflow is counted): while disconnected,
        and while the broker holds as many QoS 1/2 messages unacknowledged as may be in flight.
        paho would queue those itself, but it walks its whole queue at every acknowledgement, so
        a device behind a slow broker would cost more CPU the further behind it falls."""
        message = (publish_step(stream), topic, payload, qos, retain)
        if self.connected and self._stalls():  # loss timed the link out, taking this along
            self.drop("timeout")
            if qos == 0:  # nothing sends it again
                self._fire(message[0], 0, len(payload), MqttError("timeout"))
                return
        elif self.connected and not self._outbox and self._may_send(qos):
            self._send(*message)
            return
        if len(self._outbox) >= self.settings.buffer:
            self._outbox.popleft()
            state = "while disconnected" if not self.connected else "awaiting acknowledgements"
            self._fire(OVERFLOW, 0, 0, MqttError(f"outbox full {state}"))
        self._outbox.append(message)

    def _may_send(self, qos: int) -> bool:
        return qos == 0 or len(self._pending) < self.client.max_inflight_messages

    def _drain(self) -> None:
        """Send from the outbox, in order, as far as the connection and the in-flight window
        allow."""
        outbox = self._outbox
        while outbox and self.connected and self._may_send(outbox[0][3]):
            self._send(*outbox.popleft())

    def _send(self, step: str, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        start = time.perf_counter()
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._fire(step, 0, len(payload), MqttError(mqtt.error_string(info.rc)))
        elif qos == 0:
            self._fire(step, (time.perf_counter() - start) * 1000.0, len(payload))
        else:
            if not self._pending:  # see _on_publish
                self.client.on_publish = self._on_publish
            self._pending[info.mid] = (step, start, len(payload))

    def _publish_raw(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)

    # -- connection ----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else s.clean_start,
        )
        client.suppress_exceptions = True
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.tls:
            context = ssl.create_default_context(cafile=s.ca_file or None)
            if s.cert_file:
                context.load_cert_chain(s.cert_file, s.key_file or None)
            client.tls_set_context(context)
        client.will_set(f"{self.root}/status", self._status("lost"), qos=1, retain=True)
        # unbounded here: the outbox (settings.buffer) and the in-flight window bound it
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._loop.attach(client)
        return client

    def _status(self, state: str) -> bytes:
        return json.dumps(
            {
                "device": self.device_id,
                "profile": self.profile,
                "state": state,
                **(self._birth if state == "online" else {}),
            }
        ).encode()

    def _keep_connected(self) -> None:
        """Connect, and reconnect after losses with exponential backoff and jitter."""
        attempt = 0
        while not self._stopped and self.refused is None:
            if self.connected or self._connecting():
                gevent.sleep(1.0)
                if self.connected and self._paused():
                    self.drop()
                elif self.connected and self._offline():  # the link went down
                    self.drop("offline")
                continue
            if self._paused():
                gevent.sleep(1.0)
                continue
            attempt += 1
            if not self._try_connect():
                delay = min(BACKOFF_FIRST_S * 2 ** min(attempt - 1, 6), BACKOFF_MAX_S)
                jitter = decide.fraction(self._seed, self.device_id, "mqtt-backoff", str(attempt))
                gevent.sleep(delay * (0.5 + jitter))
            else:
                attempt = 0

    def _connecting(self) -> bool:
        return self._connect_started > 0

    def _try_connect(self) -> bool:
        s = self.settings
        for down, reason in ((self._offline, "offline"), (self._stalls, "timeout")):
            if down():  # the network profile's outage or loss: the attempt fails
                self._fire(CONNECT, 0, 0, MqttError(reason))
                return False
        self._connect_started = time.perf_counter()
        properties = None
        if s.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 0 if s.clean_start else s.session_expiry
        try:
            self.client.connect(
                s.host,
                s.port,
                keepalive=s.keepalive,
                clean_start=s.clean_start
                if s.protocol == "5"
                else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except (OSError, ssl.SSLError) as exc:
            self._connect_started = 0.0
            self._fire(CONNECT, 0, 0, MqttError(type(exc).__name__))
            return False
        # CONNACK arrives on the hub; wait for it a bounded time
        deadline = time.monotonic() + max(s.keepalive, 10)
        while self._connect_started and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if self._connect_started:  # no CONNACK
            self._connect_started = 0.0
            self._fire(CONNECT, 0, 0, MqttError("no CONNACK"))
            self.drop()
            return False
        return self.connected

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        elapsed = (time.perf_counter() - self._connect_started) * 1000.0
        self._connect_started = 0.0
        if reason.is_failure:
            text = str(reason)
            self._fire(CONNECT, elapsed, 0, MqttError(text))
            if text in REFUSED_FOR_GOOD:
                self.refused = text
                log.error(
                    "device %s: the MQTT broker refused the connection: %s; not retrying",
                    self.device_id,
                    text,
                )
            return
        self.connected = True
        self._fire(CONNECT, elapsed, 0)
        client.subscribe(f"{self.root}/commands", qos=1)
        self._publish_raw(f"{self.root}/status", self._status("online"), 1, True)
        self._drain()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        was = self.connected
        self.connected = False
        self._connect_started = 0.0
        # unacknowledged QoS>0 messages are resent by paho after reconnecting; their timers stay
        if was and not self._stopped:
            self._fire(DISCONNECT, 0, 0, MqttError(self._drop_reason or str(reason)))
        self._drop_reason = ""

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        """Set only while acknowledgements are awaited: paho builds a reason and properties
        object for every message it hands this callback, QoS 0 ones included."""
        pending = self._pending.pop(mid, None)
        if not self._pending:
            client.on_publish = None
        if pending is None:
            return
        step, start, size = pending
        failure = MqttError(str(reason)) if reason.is_failure else None
        self._fire(step, (time.perf_counter() - start) * 1000.0, size, failure)
        self._drain()

    def _on_message(self, client, userdata, message) -> None:
        if self._on_command is None:
            return
        try:
            command = json.loads(message.payload)
        except ValueError:
            log.info("device %s: ignored a command that is not JSON", self.device_id)
            return
        if isinstance(command, dict):
            self._on_command(self, command)

    def _fire(self, name: str, ms: float, size: int, exc: BaseException | None = None) -> None:
        stats.fire(self.environment, MQTT, name, ms, size, exc, profile=self.profile)
