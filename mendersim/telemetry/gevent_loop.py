"""paho-mqtt clients driven by gevent's event loop, without a thread or select() per client.

paho's own loops call select() on each client (it stalls near 340 sockets a process) or run a
thread each. paho also supports an external loop: it tells us when its socket opens, closes and
wants writing. Each socket gets a libev read watcher that calls `loop_read` from the hub. Writes
are gathered: a client that wants writing joins a set that one hub callback per loop iteration
writes out, so a publish costs no watcher of its own (the callback runs outside paho's locks,
which paho may hold when it asks); only a socket whose buffer is full gets a write watcher until
it drains. One greenlet calls `loop_misc` on every client each second for keep-alive pings.
Callbacks therefore run on the hub: they must never block.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MISC_EVERY_S = 1.0
_READ, _WRITE = 1, 2


class GeventMqttLoop:
    def __init__(self) -> None:
        self._watchers: dict[mqtt.Client, list[Any]] = {}  # client -> [read, write or None]
        self._to_write: dict[mqtt.Client, Any] = {}  # client -> its socket, in arrival order
        self._flush_scheduled = False
        self._misc: gevent.Greenlet | None = None

    def attach(self, client: mqtt.Client) -> None:
        """Call before connect(): the client's socket events go to this loop."""
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written
        if self._misc is None or self._misc.dead:
            self._misc = gevent.spawn(self._misc_forever)

    def detach(self, client: mqtt.Client) -> None:
        """Write what the client still has queued first: after its DISCONNECT paho closes the
        socket, which would otherwise stay open, one file descriptor per stopped device."""
        self._to_write.pop(client, None)
        if client.socket() is not None and client.want_write():
            self._writable(client)
        self._stop_watchers(client)

    def _opened(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        loop = gevent.get_hub().loop
        watcher = loop.io(sock.fileno(), _READ)
        watcher.start(self._readable, client)
        self._watchers[client] = [watcher, None]

    def _closed(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._stop_watchers(client)

    def _stop_watchers(self, client: mqtt.Client) -> None:
        for watcher in self._watchers.pop(client, ()):
            if watcher is not None:
                watcher.stop()
                watcher.close()

    def _want_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        watchers = self._watchers.get(client)
        if watchers is None or watchers[1] is not None:
            return
        self._to_write[client] = sock
        if not self._flush_scheduled:
            self._flush_scheduled = True
            gevent.get_hub().loop.run_callback(self._flush)

    def _flush(self) -> None:
        """Write what every client queued since the last flush; watch the sockets that are full."""
        self._flush_scheduled = False
        pending, self._to_write = self._to_write, {}
        for client, sock in pending.items():
            watchers = self._watchers.get(client)
            if watchers is None or watchers[1] is not None:
                continue  # closed meanwhile, or already waiting for room
            self._writable(client)
            if client.want_write() and watchers is self._watchers.get(client):
                watcher = gevent.get_hub().loop.io(sock.fileno(), _WRITE)
                watcher.start(self._writable, client)
                watchers[1] = watcher

    def _written(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        watchers = self._watchers.get(client)
        if watchers is not None and watchers[1] is not None:
            watchers[1].stop()
            watchers[1].close()
            watchers[1] = None

    @staticmethod
    def _readable(client: mqtt.Client) -> None:
        try:
            client.loop_read()
        except Exception:  # a callback of ours failed: never let it kill the hub
            log.exception("MQTT read handling failed")

    @staticmethod
    def _writable(client: mqtt.Client) -> None:
        try:
            client.loop_write()
        except Exception:
            log.exception("MQTT write handling failed")

    def _misc_forever(self) -> None:
        while True:
            gevent.sleep(MISC_EVERY_S)
            for client in list(self._watchers):
                client.loop_misc()
