"""The text form of a seed store's summary (`mendersim fleet`)."""

from __future__ import annotations

from typing import Any

_SECTIONS = (
    ("by_profile", "Devices by profile"),
    ("by_key_type", "Devices by key type"),
    ("by_status", "Devices by status"),
    ("by_artifact", "Devices by installed artifact"),
    ("deployments_by_result", "Deployments by result"),
)


def format_summary(summary: dict[str, Any]) -> str:
    """Aligned sections of counts with their share of the fleet, for a terminal."""
    devices = summary["devices"]
    lines = [f"Seed store {summary['path']}: {devices} devices"]
    for key, title in _SECTIONS:
        counts: dict[str, int] = summary[key]
        lines.append("")
        lines.append(title)
        if not counts:
            lines.append("  (none)")
            continue
        width = max(len(name) for name in counts)
        whole = sum(counts.values())
        for name, count in counts.items():
            lines.append(f"  {name:<{width}}  {count:>8}  {100 * count / whole:5.1f} %")
    return "\n".join(lines)
