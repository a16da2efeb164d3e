"""The master's ramp ends before its stop goes out.

Locust's master dispatches spawn messages from the greenlet that runs ``runner.start``. Its web
UI kills that greenlet before stopping; its headless run does not (the greenlet is out of
reach), so on SIGTERM mid-ramp the ramp went on sending spawns after the "stop": workers
restarted the swarm and the master's wait for zero users ran into its 60 s timeout.
"""

from __future__ import annotations

import gevent
from gevent import Greenlet

# Spawn messages the killed ramp had scheduled (gevent.spawn_later(0)) go out on the loop's
# next timer pass; a later timer lets them leave ahead of the "stop".
_SENDS_DRAIN_S = 0.01


class SpawnDispatch:
    """The greenlet that runs the master's spawn dispatch, remembered to end it at the stop."""

    def __init__(self) -> None:
        self._ramp: Greenlet | None = None

    def note(self) -> None:
        """Called from test_start, which Locust fires inside the greenlet that ramps."""
        current = gevent.getcurrent()
        self._ramp = current if isinstance(current, Greenlet) else None

    def end(self) -> bool:
        """Kill a ramp still running (not the caller's own greenlet); True if one was."""
        ramp, self._ramp = self._ramp, None
        if ramp is None or ramp.dead or ramp is gevent.getcurrent():
            return False
        ramp.kill(block=True)
        gevent.sleep(_SENDS_DRAIN_S)
        return True
