"""Device events → DEVICE statistics and the per-process counters the Fleet view is built from."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from gevent.event import Event

from mendersim.device.events import DeviceListener
from mendersim.harness.reporting import stats

if TYPE_CHECKING:
    from mendersim.device.engine import Device
    from mendersim.fleet.model import DeploymentRecord


class FleetCounters:
    """Cumulative figures of this process; device states are counted from the live devices."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.download_bytes = 0
        self.download_seconds = 0.0
        self.changed: set[Device] = set()  # devices whose state the store has not seen yet
        self.change = Event()  # set by mark(): the pool sends the state without waiting

    def mark(self, device: Device) -> None:
        """A device's state changed (status, finished deployment): send it to the master."""
        self.changed.add(device)
        self.change.set()


class HarnessListener(DeviceListener):
    """One per process, shared by every device: counts and fires DEVICE entries."""

    def __init__(self, environment: Any, counters: FleetCounters) -> None:
        self._environment = environment
        self._counters = counters

    def _fire(self, device: Device, name: str, value: float, nbytes: int = 0) -> None:
        stats.measure(
            self._environment, stats.DEVICE, name, value, nbytes, profile=device.record.profile
        )

    def accepted(self, device: Device, seconds_waiting: float) -> None:
        self._counters.mark(device)
        self._fire(device, stats.TIME_TO_ACCEPTED, seconds_waiting * 1000.0)

    def status_changed(self, device: Device, status: str) -> None:
        self._counters.mark(device)

    def deployment_finished(self, device: Device, record: DeploymentRecord, seconds: float) -> None:
        result = record.result or "unknown"
        self._counters.outcomes[result] += 1
        self._counters.mark(device)
        self._fire(device, stats.DEPLOYMENT_DURATION, seconds * 1000.0)
        self._fire(device, stats.outcome(result), 0)

    def download_finished(self, device: Device, nbytes: int, seconds: float) -> None:
        self._counters.download_bytes += nbytes
        self._counters.download_seconds += seconds
        kb_per_s = nbytes / 1000.0 / seconds if seconds > 0 else 0.0
        self._fire(device, stats.DOWNLOAD_THROUGHPUT, kb_per_s, nbytes)

    def downtime(self, device: Device, kind: str, seconds: float) -> None:
        self._fire(device, stats.downtime(kind), seconds * 1000.0)
