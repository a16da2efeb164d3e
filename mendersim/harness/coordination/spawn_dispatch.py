"""The master's spawn dispatch ends before its stop goes out.

Locust's master dispatches spawn messages from the greenlet that runs ``runner.start`` (one per
swarm, and one per change of the user count). Its web UI kills that greenlet before stopping;
its headless run does not (the greenlet is out of reach), so on SIGTERM mid-ramp the dispatch
went on sending spawns after the "stop": workers restarted the swarm and the master's wait for
zero users ran into its 60 s timeout.
"""

from __future__ import annotations

import functools
from typing import Any

import gevent
from gevent import Greenlet

# Spawn messages the killed dispatch had scheduled (gevent.spawn_later(0)) go out on the loop's
# next timer pass; a later timer lets them leave ahead of the "stop".
_SENDS_DRAIN_S = 0.01


class SpawnDispatch:
    """The greenlet running the master's latest ``start``, remembered to end it at the stop."""

    def __init__(self) -> None:
        self._running: Greenlet | None = None

    def watch(self, runner: Any) -> None:
        """Note the greenlet of every later ``runner.start`` (headless, web UI or shape)."""
        start = runner.start

        @functools.wraps(start)
        def noted(*args: Any, **kwargs: Any) -> Any:
            current = gevent.getcurrent()
            self._running = current if isinstance(current, Greenlet) else None
            return start(*args, **kwargs)

        runner.start = noted

    def end(self) -> bool:
        """Kill a dispatch still running (not the caller's own greenlet); True if one was."""
        running, self._running = self._running, None
        if running is None or running.dead or running is gevent.getcurrent():
            return False
        running.kill(block=True)
        gevent.sleep(_SENDS_DRAIN_S)
        return True
