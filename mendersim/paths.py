"""Where the shipped profiles live, so that every package finds them the same way."""

from __future__ import annotations

import os
from pathlib import Path

PROFILES_ENV = "MENDERSIM_PROFILES_DIR"


def profiles_root() -> Path:
    """The `profiles/` folder `MENDERSIM_PROFILES_DIR` names, or the one next to the package.

    Installed images (docker/) set the variable; a checkout needs nothing."""
    env = os.environ.get(PROFILES_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "profiles"
