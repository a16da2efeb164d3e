"""The mender-configure add-on: fetch the configuration the server holds, report what is applied.

Mender's add-on reports from its inventory script, so at the client's inventory interval, and
only when the configuration or the device's token changed since its last report (its checksum
covers both). The configuration is fetched with the device API's `GET`, standing in for the
configuration deployment that delivers it to a real device.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from mendersim.device import steps
from mendersim.device.transport import Response, TransportError

log = logging.getLogger(__name__)

CONFIGURATION_PATH = "/api/devices/v1/deviceconfig/configuration"

Call = Callable[[str, str, str, bytes | None], Response]


def _decode(body: bytes) -> dict[str, str] | None:
    """The server's `{key: string}` configuration; None when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return data


class DeviceConfiguration:
    """One device's applied configuration and the checksum of its last report."""

    __slots__ = ("_reported", "applied")

    def __init__(self) -> None:
        self.applied: dict[str, str] | None = None  # None: no configuration yet, nothing to report
        self._reported: bytes | None = None

    def cycle(self, call: Call, token: Callable[[], str | None]) -> None:
        """Fetch, apply when it changed, report when the configuration or token changed."""
        try:
            response = call(steps.DEVICECONFIG, "GET", CONFIGURATION_PATH, None)
        except TransportError as exc:
            log.debug("deviceconfig fetch failed: %s", exc.kind)
            return
        if response.status == 200 and (fetched := _decode(response.body)) is not None:
            self.applied = fetched
        if self.applied is None:
            return
        body = json.dumps(self.applied, sort_keys=True, separators=(",", ":")).encode()
        checksum = hashlib.sha256((token() or "").encode() + b"\n" + body).digest()
        if checksum == self._reported:
            return
        try:
            reported = call(steps.DEVICECONFIG_REPORT, "PUT", CONFIGURATION_PATH, body)
        except TransportError as exc:
            log.debug("deviceconfig report failed: %s", exc.kind)
            return
        if reported.status == 204:
            self._reported = checksum
