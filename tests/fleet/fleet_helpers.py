"""Shared helpers of the fleet tests: the shipped profiles and variants of them."""

from __future__ import annotations

import copy
import sqlite3
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


def identity_index(db: Path) -> str | None:
    """The SQL of the unique identity index, which seeding builds once every device is in."""
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'devices_id_data'")
        row = found.fetchone()
    return row[0] if row else None
