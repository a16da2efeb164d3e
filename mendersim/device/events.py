"""What a device tells whoever drives it; the harness subclasses this to feed its statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mendersim.device.engine import Device
    from mendersim.fleet.model import DeploymentRecord


class DeviceListener:
    """No-op hooks: override only what you need. Called on the device's own greenlet."""

    def accepted(self, device: Device, seconds_waiting: float) -> None:
        """The first successful authentication, `seconds_waiting` after the first attempt."""

    def status_changed(self, device: Device, status: str) -> None:
        """The server refused the device: its status became rejected or pending."""

    def phase_changed(self, device: Device, old: str, new: str) -> None:
        """The device moved between phases (idle, polling, downloading, ...)."""

    def deployment_finished(self, device: Device, record: DeploymentRecord, seconds: float) -> None:
        """A deployment ended; `seconds` from the poll that found it to its final status."""

    def download_finished(self, device: Device, nbytes: int, seconds: float) -> None:
        """An artifact download ended (completely or not) after `nbytes` in `seconds`."""

    def downtime(self, device: Device, kind: str, seconds: float) -> None:
        """The device was unavailable for `seconds`; `kind` is install or reboot."""
