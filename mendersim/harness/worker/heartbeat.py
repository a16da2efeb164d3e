"""A worker's heartbeats to its master from a real thread, so that a busy hub cannot delay them.

Locust's master marks a worker missing after three heartbeat seconds without one, and stops the
run when the last worker goes missing. Locust sends them from a greenlet, which a saturated
worker runs late: at 1,000,000 devices both workers were dropped while spawning. This thread
sends the same message over its own ZeroMQ socket every second; the master reads the worker's
id from the message, updates that worker and answers on the worker's own socket. It vouches for
a hub that still runs, not for a hung one: it stays silent once the hub has not ticked for
HUB_STALL_S, and then the master sees the worker missing as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import zmq
from gevent import monkey
from locust.rpc.protocol import Message

logger = logging.getLogger(__name__)

EVERY_S = 1.0
HUB_STALL_S = 30.0


class HubTicks:
    """When the hub last ran a greenlet of ours; read from the thread."""

    def __init__(self) -> None:
        self.at = time.monotonic()
        self._greenlet = gevent.spawn(self._tick)

    def _tick(self) -> None:
        while True:
            self.at = time.monotonic()
            gevent.sleep(EVERY_S)

    def stalled(self) -> bool:
        return time.monotonic() - self.at > HUB_STALL_S


def _message(runner: Any) -> bytes:
    data = {
        "state": runner.worker_state,
        "current_cpu_usage": runner.current_cpu_usage,
        "current_memory_usage": runner.current_memory_usage,
    }
    return Message("heartbeat", data, runner.client_id).serialize()


def start(runner: Any) -> None:
    """Send `runner`'s heartbeats from a thread of their own until the process ends."""
    ticks = HubTicks()
    sleep = monkey.get_original("time", "sleep")
    start_thread = monkey.get_original("_thread", "start_new_thread")

    def beat() -> None:
        context = zmq.Context()  # plain ZeroMQ: this thread has no gevent hub
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.IDENTITY, f"{runner.client_id}/heartbeat".encode())
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, 5)  # a master that reads nothing gets no backlog
        socket.connect(f"tcp://{runner.master_host}:{runner.master_port}")
        while True:
            sleep(EVERY_S)
            if ticks.stalled():
                continue
            try:
                socket.send(_message(runner), zmq.NOBLOCK)
            except zmq.ZMQError:
                continue  # queue full: the master is not reading; Locust's checks decide

    start_thread(beat, ())
    logger.debug("heartbeats of %s sent from their own thread", runner.client_id)
