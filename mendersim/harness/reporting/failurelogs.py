"""What the devices that failed a rollout said: the error lines of the logs they uploaded,
grouped by message, read back from the server's management API after the run.

Only devices whose log the server holds are read ("List Devices in Deployment" says which), at
most READ_AT_MOST of them, so a large failed rollout costs a bounded number of requests.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

READ_AT_MOST = 500


def error_messages(text: str) -> list[str]:
    """The messages of the error lines of a deployment log as the management API returns it
    (`<timestamp> <level> <message>` a line)."""
    messages = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1].rstrip(":").lower() == "error":
            messages.append(parts[2])
    return messages


def read_failure_logs(
    management: Any, deployment_id: str, at_most: int = READ_AT_MOST
) -> dict[str, Any]:
    """Failed devices, how many uploaded a log, how many logs were read, and per distinct error
    message the devices that logged it and its lines (most devices first)."""
    failed = management.deployment_devices(deployment_id, "failure")
    with_log = sorted(d["id"] for d in failed if d.get("log"))
    devices: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for device_id in with_log[:at_most]:
        said = Counter(error_messages(management.device_log(deployment_id, device_id)))
        devices.update(said.keys())
        lines.update(said)
    return {
        "deployment_id": deployment_id,
        "failed": len(failed),
        "with_log": len(with_log),
        "read": min(len(with_log), at_most),
        "messages": [
            {"message": message, "devices": n, "lines": lines[message]}
            for message, n in sorted(devices.items(), key=lambda item: (-item[1], item[0]))
        ],
    }
