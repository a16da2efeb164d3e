"""Whether the server accepts the fleet: a run whose devices are never accepted measures nothing.

A bound after spawning (`--mendersim-accept-timeout`, by default three poll intervals at the
time scale, plus the ramp window) gives every device time for several authentication attempts;
if by then fewer devices than users were accepted by this server, the harness warns on the
console and in the Fleet tab. The `fleet.accepted_share` threshold rule turns it into a verdict.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent

from mendersim.harness.coordination.fleetview import FleetView

logger = logging.getLogger(__name__)

POLL_INTERVALS = 3


def default_timeout(poll_interval_s: float, time_scale: float, ramp_window_s: float) -> float:
    """Real seconds after spawning by which a healthy server has accepted every device."""
    return POLL_INTERVALS * poll_interval_s * time_scale + ramp_window_s


class AcceptanceWatch:
    """Checks once, `timeout_s` after spawning completes, how much of the fleet is accepted."""

    def __init__(self, environment: Any, view: FleetView, timeout_s: float) -> None:
        self._environment = environment
        self._view = view
        self._timeout = timeout_s
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.stop()
        self._view.accept_warning = None
        self._greenlet = gevent.spawn(self._watch)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _watch(self) -> None:
        runner = self._environment.runner
        while runner.state != "running":
            gevent.sleep(0.5)
        gevent.sleep(self._timeout)
        snapshot = self._view.snapshot()
        while not snapshot.devices_by_status:  # the first reports are on their way
            gevent.sleep(0.5)
            snapshot = self._view.snapshot()
        simulated = sum(snapshot.devices_by_status.values())
        accepted = snapshot.devices_by_status.get("accepted", 0)
        if simulated and accepted < simulated:
            self._view.accept_warning = (
                f"only {accepted} of {simulated} devices accepted by {self._environment.host} "
                f"{self._timeout:.0f} s after spawning: accept or pre-authorize them "
                "(mendersim preauthorize)"
            )
            logger.warning(self._view.accept_warning)
