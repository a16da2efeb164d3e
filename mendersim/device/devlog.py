"""The deployment log a device keeps during one deployment and uploads after a failure."""

from __future__ import annotations

import json
from datetime import datetime, timezone


class DeploymentLog:
    """Lines of one deployment: (unix time, level, message); gone when the deployment ends."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str]] = []

    def add(self, when: float, level: str, message: str) -> None:
        self.lines.append((when, level, message))

    def messages(self) -> list[str]:
        return [message for _, _, message in self.lines]

    def body(self) -> bytes:
        """The log upload body: RFC 3339 timestamps with a zone, as the client sends them."""
        messages = [
            {"timestamp": _rfc3339(when), "level": level, "message": message}
            for when, level, message in self.lines
        ]
        return json.dumps({"messages": messages}, separators=(",", ":")).encode()


def _rfc3339(when: float) -> str:
    moment = datetime.fromtimestamp(when, tz=timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
