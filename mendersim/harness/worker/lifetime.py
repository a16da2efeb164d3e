"""Nothing a run starts outlives its master, however the master ends (SIGKILL included).

- Every process a Locust process of the harness forks (the `--processes` workers, and the
  subprocesses gevent forks before exec) asks Linux for SIGTERM when its parent dies, through
  the embedded server's lifeline helper; armed in the child right after the fork, before it
  even connects to the master.
- Every worker watches its master: Locust's own check quits only after 60 s without heartbeats.
  Once none came for MASTER_SILENCE_S, the worker probes the master's port: a busy master's
  kernel still accepts the connection, a dead master's refuses it, and then the worker quits.
- A quitting worker has EXIT_GRACE_S to finish; then a real thread ends the process, which no
  saturated gevent loop can delay.
- A worker that left its users to its exit (the hand-in of a run that ends) exits as soon as
  Locust's quit has sent its last messages, without the interpreter's teardown ending each user.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

import gevent
from gevent import monkey

from mendersim.server.lifeline import death_signal

logger = logging.getLogger(__name__)

MASTER_SILENCE_S = 10.0  # Locust's master answers each worker heartbeat, sent every second
CHECK_EVERY_S = 1.0
PROBE_TIMEOUT_S = 3.0
EXIT_GRACE_S = 15.0
EXIT_CODE = 3  # the worker was ended by its grace deadline, not by its own shutdown
_GONE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


class _Forks:
    """The PID forking right now (the child's parent to be), and whether the hooks are set."""

    parent = 0
    registered = False


def _before_fork() -> None:
    _Forks.parent = os.getpid()


def _in_child() -> None:
    death_signal(signal.SIGTERM)
    if os.getppid() != _Forks.parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def children_die_with_parent() -> None:
    """Arm the death signal in every child this process forks from now on (once per process)."""
    if not _Forks.registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_child=_in_child)
        _Forks.registered = True


def master_gone(host: str, port: int) -> bool:
    """Whether nothing listens on the master's port any more (a stalled master still accepts;
    a probe that times out proves nothing, so it counts as there)."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return False
    except OSError as exc:
        return exc.errno in _GONE


def watch_master(runner: Any) -> gevent.Greenlet:
    """Quit this worker once its master has been silent for MASTER_SILENCE_S and is gone."""

    def watch() -> None:
        started = time.time()
        while True:
            gevent.sleep(CHECK_EVERY_S)
            last = runner.last_heartbeat_timestamp or started
            silent = time.time() - last
            if silent < MASTER_SILENCE_S:
                continue
            if master_gone(runner.master_host, runner.master_port):
                logger.error(
                    "mendersim: no heartbeat from the master %s:%s for %.0f s and its port is "
                    "closed: the master is gone, this worker quits",
                    runner.master_host,
                    runner.master_port,
                    silent,
                )
                runner.environment.process_exit_code = 1
                runner.quit()
                return

    return gevent.spawn(watch)


def exit_within_grace(**_: Any) -> None:
    """The worker is quitting: end the process after EXIT_GRACE_S if it is still there."""
    start_thread = monkey.get_original("_thread", "start_new_thread")
    sleep = monkey.get_original("time", "sleep")

    def deadline() -> None:
        sleep(EXIT_GRACE_S)
        note = f"mendersim: worker still quitting after {EXIT_GRACE_S:.0f} s; ended\n"
        os.write(2, note.encode())
        os._exit(EXIT_CODE)

    start_thread(deadline, ())


FLUSH_LINGER_MS = 2000  # Locust's last messages (final stats, "quit") still queued in ZeroMQ


def exit_at_quit(environment: Any) -> None:
    """End the process at Locust's `quit` event, after every listener registered so far, once
    logs and Locust's queued messages are out. Locust fires `quit` last, with the exit code;
    a worker writes no CSV files, the only step after it."""

    def exit_now(exit_code: int = 0, **_: Any) -> None:
        client = environment.runner.client
        context = client.socket.context
        client.close(linger=FLUSH_LINGER_MS)
        context.term()  # returns once the queued messages are sent, or after the linger
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)

    environment.events.quit.add_listener(exit_now)
