"""The embedded server ends with the process that started it, however that process ends.

`running_server` names its own PID in MENDERSIM_PARENT_PID. The server then asks Linux for a
SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG) and, on any system, watches its parent
PID: once the parent is gone (the server is re-parented) it sends itself SIGTERM, which stops
it cleanly and saves a --db state. No orphan keeps the port or the state file.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading

PARENT_ENV = "MENDERSIM_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_WATCH_EVERY_S = 0.5

log = logging.getLogger(__name__)


def death_signal(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send `signum` to this process when its parent dies (elsewhere: nothing).

    The C library is the process's own symbols (no library search, which would start a
    subprocess: this also runs in a child just forked)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable; the parent watchdog alone is used")


def _watch(parent: int) -> None:
    stop = threading.Event()
    while not stop.wait(_WATCH_EVERY_S):
        if os.getppid() != parent:
            log.warning("parent process %d is gone; stopping", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def bind_to_parent() -> None:
    """Stop this process when the parent named in MENDERSIM_PARENT_PID exits."""
    value = os.environ.get(PARENT_ENV, "")
    if not value.isdigit():
        return
    parent = int(value)
    death_signal()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
        return
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()
