"""paho-mqtt clients driven by gevent's event loop, without a thread or select() per client.

paho's own loops call select() on each client (it stalls near 340 sockets a process) or run a
thread each. paho also supports an external loop: it tells us when its socket opens, closes and
wants writing. Each socket gets a libev read watcher that calls `loop_read` from the hub. Writes
are gathered: a client that wants writing joins a set that one hub callback per loop iteration
writes out, so a publish costs no watcher of its own (the callback runs outside paho's locks,
which paho may hold when it asks); only a socket whose buffer is full gets a write watcher until
it drains. One greenlet calls `loop_misc` on every client each second for keep-alive pings.
Callbacks therefore run on the hub: they must never block.

paho guards its state with `threading` locks, which gevent turns into Python-level locks costing
a few microseconds each; a publish takes about a dozen, and allocates a Condition (and so a lock)
for the message it returns. All clients on a loop live in one OS thread and paho never yields
while holding one (its sockets are non-blocking; it opens a new one outside them), so `attach`
gives each client the interpreter's own C locks instead, and paho's message Conditions are built
on one: still correct for real threads, and `wait_for_publish` still waits cooperatively, since a
Condition releases its lock while it waits on a lock of gevent's.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import gevent
import paho.mqtt
import paho.mqtt.client as mqtt
from gevent import monkey

log = logging.getLogger(__name__)

MISC_EVERY_S = 1.0
_READ, _WRITE = 1, 2
# paho-mqtt 2.2's lock attributes (Client.__init__), and which of them it takes reentrantly
PAHO_LOCKS = {
    "_in_callback_mutex": False,
    "_callback_mutex": True,
    "_msgtime_mutex": False,
    "_out_message_mutex": True,
    "_in_message_mutex": False,
    "_reconnect_delay_mutex": False,
    "_mid_generate_mutex": False,
}
NATIVE_LOCK = monkey.get_original("_thread", "allocate_lock")
NATIVE_RLOCK = monkey.get_original("_thread", "RLock")


class _PahoThreading:
    """`threading` as paho's module sees it: the same, but Conditions over a C lock."""

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)

    @staticmethod
    def Condition(lock: Any = None) -> threading.Condition:
        return threading.Condition(NATIVE_RLOCK() if lock is None else lock)


def use_native_locks(client: mqtt.Client) -> None:
    """Swap paho's gevent-patched locks for C ones (see the module's docstring). A paho that
    renamed them fails here, loudly, rather than quietly keeping the slow ones."""
    for name, reentrant in PAHO_LOCKS.items():
        if not hasattr(client, name):
            version = paho.mqtt.__version__
            raise RuntimeError(f"paho-mqtt {version} has no Client.{name}: see PAHO_LOCKS")
        setattr(client, name, NATIVE_RLOCK() if reentrant else NATIVE_LOCK())
    if not isinstance(mqtt.threading, _PahoThreading):
        mqtt.threading = _PahoThreading()  # type: ignore[assignment]


class GeventMqttLoop:
    def __init__(self) -> None:
        self._watchers: dict[mqtt.Client, list[Any]] = {}  # client -> [read, write or None]
        self._to_write: dict[mqtt.Client, Any] = {}  # client -> its socket, in arrival order
        self._flush_scheduled = False
        self._misc: gevent.Greenlet | None = None

    def attach(self, client: mqtt.Client) -> None:
        """Call before connect(): the client's socket events go to this loop."""
        use_native_locks(client)
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
