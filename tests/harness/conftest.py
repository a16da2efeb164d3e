"""Fixtures of the harness's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness_helpers import seed


@pytest.fixture(scope="session")
def seeded_small_fleet(tmp_path_factory) -> Path:
    return seed(tmp_path_factory.mktemp("small"), [{"profile": "automotive", "count": 40}])


@pytest.fixture
def small_fleet(seeded_small_fleet, tmp_path) -> Path:
    """Forty ed25519 devices, a fresh copy per test: runs write their state into it."""
    copy = tmp_path / "fleet.db"
    shutil.copyfile(seeded_small_fleet, copy)
    return copy
