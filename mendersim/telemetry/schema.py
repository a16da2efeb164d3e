"""JSON Schema of an industry profile's `telemetry:` section (plugged into the profile schema).

Kept apart from the rest of the profile schema so telemetry grows without touching the keys the
device engine reads.
"""

from __future__ import annotations

from typing import Any

ANOMALY_TYPES: tuple[str, ...] = ("spike", "drift", "pattern_change", "missing", "noise_burst")
STREAM_KINDS: tuple[str, ...] = ("gauge", "event")
ENCODINGS: tuple[str, ...] = ("json", "binary")
AGGREGATES: tuple[str, ...] = ("min", "max", "mean", "count", "last")

_NUMBER = {"type": "number"}
# Shared with the rest of the profile schema (mendersim/fleet/schema.py).
POSITIVE = {"type": "number", "exclusiveMinimum": 0}
SPAN = {  # a min..max range, e.g. of seconds
    "type": "object",
    "properties": {
        "min": {"type": "number", "minimum": 0},
        "max": {"type": "number", "minimum": 0},
    },
    "required": ["min", "max"],
    "additionalProperties": False,
}
_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_]*$"}

_STREAM = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "kind": {"enum": list(STREAM_KINDS)},
        "unit": {"type": "string"},
        "base": _NUMBER,  # gauge: level; event: probability per reading
        "daily": {
            "type": "object",
            "properties": {
                "amplitude": _NUMBER,
                "peak_hour": {"type": "number", "minimum": 0, "maximum": 24},
            },
            "required": ["amplitude"],
            "additionalProperties": False,
        },
        "noise": {"type": "number", "minimum": 0},
        "drift_per_day": _NUMBER,
        "range": {
            "type": "object",
            "properties": {"min": _NUMBER, "max": _NUMBER},
            "additionalProperties": False,
        },
        "interval_s": POSITIVE,
        "qos": {"enum": [0, 1, 2]},
        # edge rules, read by a gateway (see _GATEWAY): report by exception instead of
        # aggregating, and alerts sent at once when a reading crosses a limit
        "deadband": POSITIVE,
        "alert_above": _NUMBER,
        "alert_below": _NUMBER,
    },
    "required": ["name", "base"],
    "additionalProperties": False,
}

_ANOMALY_TYPE = {
    "type": "object",
    "properties": {
        "weight": {"type": "number", "minimum": 0},
        "duration_s": SPAN,
        "magnitude": {"type": "number", "minimum": 0},
    },
    "required": ["weight", "duration_s"],
    "additionalProperties": False,
}

# A gateway device owns `children` sensors, each with the section's streams, and sends what its
# rules select: per window the `aggregates` of each stream, deadband reports, alerts; while
# offline up to `buffer` messages wait for the link.
_GATEWAY = {
    "type": "object",
    "properties": {
        "children": {"type": "integer", "minimum": 1, "maximum": 1000},
        "window_s": POSITIVE,
        "aggregates": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": list(AGGREGATES)},
        },
        "buffer": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "qos": {"enum": [0, 1, 2]},
    },
    "required": ["children"],
    "additionalProperties": False,
}

TELEMETRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "interval_s": POSITIVE,
        "batch": {"type": "integer", "minimum": 1, "maximum": 1000},
        "encoding": {"enum": list(ENCODINGS)},
        "qos": {"enum": [0, 1, 2]},
        "streams": {"type": "array", "minItems": 1, "items": _STREAM},
        "gateway": _GATEWAY,
        "locations": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "name": _NAME,
                    "weight": POSITIVE,
                    # per stream: added to its base level, and to its daily amplitude
                    "offsets": {"type": "object", "additionalProperties": _NUMBER},
                    "amplitude": {"type": "object", "additionalProperties": _NUMBER},
                },
                "required": ["name", "weight"],
                "additionalProperties": False,
            },
        },
        "anomalies": {
            "type": "object",
            "properties": {
                # chance that an anomaly starts in a stream within one slot of slot_s seconds
                "rate": {"type": "number", "minimum": 0, "maximum": 1},
                "slot_s": POSITIVE,
                "types": {
                    "type": "object",
                    "propertyNames": {"enum": list(ANOMALY_TYPES)},
                    "additionalProperties": _ANOMALY_TYPE,
                },
            },
            "additionalProperties": False,
        },
    },
    "required": ["streams"],
    "additionalProperties": False,
}
