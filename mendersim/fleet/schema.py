"""JSON Schemas (Draft 2020-12) of industry profiles and fleet configs, and their validation.

The schemas say what a well-formed document looks like; `validate` turns the most relevant
violation into a one-line `ConfigError` naming the file and the key path, e.g.
`profiles/fleets/x.yaml: groups[1].count: -3 is less than the minimum of 1`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from mendersim.device.churn import CHURN_SCHEMA
from mendersim.device.traffic import TIERS
from mendersim.errors import ConfigError
from mendersim.fleet.keys import KEY_TYPES
from mendersim.telemetry.schema import POSITIVE as _POSITIVE
from mendersim.telemetry.schema import SPAN as _SPAN
from mendersim.telemetry.schema import TELEMETRY_SCHEMA

# Failure modes the device engine implements; profiles weight them.
FAILURE_MODES: tuple[str, ...] = (
    "download_connection_reset",
    "download_checksum_mismatch",
    "install_no_space",
    "install_out_of_memory",
    "reboot_kernel_panic",
    "commit_health_check",
)
IDENTITY_KINDS: tuple[str, ...] = ("vin", "mac", "udi", "serial")
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The most devices one group may hold; identity generators reserve this many codes per group.
MAX_GROUP_COUNT = 1_000_000

_SCALAR = {"type": ["string", "number", "boolean"]}


def _weighted(value_schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {"value": value_schema, "weight": _POSITIVE},
            "required": ["value", "weight"],
            "additionalProperties": False,
        },
    }


def _manufacturers(fields: Mapping[str, Any], required: Iterable[str]) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "weight": _POSITIVE,
                **fields,
            },
            "required": ["name", "weight", *required],
            "additionalProperties": False,
        },
    }


_SERIAL_FIELDS = {
    "serial_prefix": {"type": "string"},
    "serial_digits": {"type": "integer", "minimum": 6, "maximum": 16},
    "serial_radix": {"enum": [10, 16]},
}

_IDENTITY_BY_KIND: dict[str, dict[str, Any]] = {
    "vin": {
        "properties": {
            "manufacturers": _manufacturers(
                {"wmi": {"type": "string", "pattern": "^[A-HJ-NPR-Z0-9]{3}$"}}, ["wmi"]
            ),
            "model_years": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "integer", "minimum": 1980, "maximum": 2100},
            },
        },
        "required": ["model_years"],
    },
    "mac": {
        "properties": {
            "manufacturers": _manufacturers(
                {"oui": {"type": "string", "pattern": "^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){2}$"}},
                ["oui"],
            ),
        },
    },
    "udi": {
        "properties": {
            "manufacturers": _manufacturers(
                {
                    "company_prefix": {"type": "string", "pattern": "^[0-9]{6,11}$"},
                    **_SERIAL_FIELDS,
                },
                ["company_prefix", "serial_digits"],
            ),
        },
    },
    "serial": {
        "properties": {
            "manufacturers": _manufacturers(_SERIAL_FIELDS, ["serial_prefix", "serial_digits"]),
        },
    },
}

PROFILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
        "description": {"type": "string"},
        "identity": {
            "type": "object",
            "properties": {
                "kind": {"enum": list(IDENTITY_KINDS)},
                "manufacturers": {"type": "array"},
                "model_years": {"type": "array"},  # checked, and required, for kind vin
                "extra": {"type": "object", "additionalProperties": _weighted({"type": "string"})},
            },
            "required": ["kind", "manufacturers"],
            "allOf": [
                {"if": {"properties": {"kind": {"const": kind}}}, "then": then}
                for kind, then in _IDENTITY_BY_KIND.items()
            ],
            "additionalProperties": False,
        },
        "key_type": {
            "oneOf": [{"enum": list(KEY_TYPES)}, _weighted({"enum": list(KEY_TYPES)})],
        },
        "device_types": _weighted({"type": "string", "minLength": 1}),
        "artifact_name": {"type": "string", "minLength": 1},
        "artifact_verify_key": {"type": "string", "minLength": 1},
        "inventory": {"type": "object", "additionalProperties": _weighted(_SCALAR)},
        "quirks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "match": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": _SCALAR,
                    },
                    "reason": {"type": "string"},
                    "success_rate_delta": {"type": "number", "minimum": -1, "maximum": 1},
                    "failure_weights": {
                        "type": "object",
                        "propertyNames": {"enum": list(FAILURE_MODES)},
                        "additionalProperties": {"type": "number", "minimum": 0},
                    },
                    "anomaly_rate": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["match"],
                "additionalProperties": False,
            },
        },
        "network": {
            "type": "object",
            "properties": {
                "profile": {"type": "string", "minLength": 1},
                "bandwidth_kbps": {
                    "type": "object",
                    "properties": {"down": _POSITIVE, "up": _POSITIVE},
                    "additionalProperties": False,
                },
            },
            "required": ["profile"],
            "additionalProperties": False,
        },
        "intervals": {
            "type": "object",
            "properties": {
                "update_poll": _POSITIVE,
                "inventory_poll": _POSITIVE,
                "retry_poll": _POSITIVE,
            },
            "additionalProperties": False,
        },
        "durations": {
            "type": "object",
            "properties": {name: _SPAN for name in ("install", "reboot")},
            "additionalProperties": False,
        },
        "update": {
            "type": "object",
            "properties": {
                "success_rate": {"type": "number", "minimum": 0, "maximum": 1},
                "failure_modes": {
                    "type": "object",
                    "propertyNames": {"enum": list(FAILURE_MODES)},
                    "additionalProperties": {"type": "number", "minimum": 0},
                },
            },
            "additionalProperties": False,
        },
        "telemetry": TELEMETRY_SCHEMA,
        "tier": {"enum": list(TIERS)},
        "inventory_churn": CHURN_SCHEMA,
        "deviceconfig": {"type": "boolean"},
        "deviceconnect": {"type": "boolean"},
        "update_control_map": {"type": "boolean"},
    },
    "required": ["name", "identity", "key_type", "device_types", "artifact_name", "network"],
    "additionalProperties": False,
}

FLEET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "server_url": {"type": "string", "pattern": "^https?://[^\\s/]+"},
        "tenant_token": {"type": "string"},
        "poll_interval": _POSITIVE,
        "seed": {"type": "integer", "minimum": 0},
        "logging": {
            "type": "object",
            "properties": {
                "file": {"type": "string", "minLength": 1},
                "level": {"enum": list(LOG_LEVELS)},
                "max_bytes": {"type": "integer", "minimum": 1024},
                "backups": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": False,
        },
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "profile": {"type": "string", "minLength": 1},
                    "count": {"type": "integer", "minimum": 1, "maximum": MAX_GROUP_COUNT},
                },
                "required": ["profile", "count"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["groups"],
    "additionalProperties": False,
}

_VALIDATORS = {
    id(PROFILE_SCHEMA): Draft202012Validator(PROFILE_SCHEMA),
    id(FLEET_SCHEMA): Draft202012Validator(FLEET_SCHEMA),
}


def key_path(parts: Iterable[str | int]) -> str:
    """`("groups", 1, "count")` → `groups[1].count`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate(document: Any, schema: Mapping[str, Any], file: str) -> None:
    """Raise a ConfigError naming `file`, the key path and the reason of the worst violation."""
    validator = _VALIDATORS.get(id(schema)) or Draft202012Validator(schema)
    error = best_match(validator.iter_errors(document))
    if error is None:
        return
    path = key_path(error.absolute_path)
    raise ConfigError(f"{file}: {path}" if path else file, error.message)
