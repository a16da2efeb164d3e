"""Shared helpers of the fleet tests: the shipped profiles and variants of them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
INDUSTRIES = REPO / "profiles" / "industries"


def shipped_profile(name: str) -> dict[str, Any]:
    return yaml.safe_load((INDUSTRIES / f"{name}.yaml").read_text())


def variant(base: str, name: str, **changes: Any) -> dict[str, Any]:
    """A shipped profile renamed and changed, e.g. to pin its key type."""
    document = copy.deepcopy(shipped_profile(base))
    document["name"] = name
    document.update(changes)
    return document
