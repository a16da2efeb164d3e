"""The text form of a seed store's summary (`mendersim fleet`)."""

from __future__ import annotations

from typing import Any

_SECTIONS = (
    ("by_profile", "Devices by profile"),
    ("by_key_type", "Devices by key type"),
    ("by_artifact", "Devices by installed artifact"),
    ("deployments_by_result", "Deployments by result"),
)


def format_summary(summary: dict[str, Any]) -> str:
    """Aligned sections of counts with their share of the fleet, for a terminal; device
    statuses per server, each as a share of the whole fleet."""
    devices = summary["devices"]
    lines = [f"Seed store {summary['path']}: {devices} devices"]
    for key, title in _SECTIONS:
        lines += _section(title, summary[key], None)
    for server, counts in summary["by_server"].items():
        lines += _section(f"Devices by status on {server}", counts, devices)
    if not summary["by_server"]:
        lines += ["", "Devices by status on a server", "  (none: every device is new to all)"]
    return "\n".join(lines)


def _section(title: str, counts: dict[str, int], whole: int | None) -> list[str]:
    lines = ["", title]
    if not counts:
        return [*lines, "  (none)"]
    width = max(len(name) for name in counts)
    whole = whole or sum(counts.values())
    for name, count in counts.items():
        lines.append(f"  {name:<{width}}  {count:>8}  {100 * count / whole:5.1f} %")
    return lines
