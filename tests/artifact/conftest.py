"""Keys and paths shared by the artifact tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mendersim.fleet import keys


@pytest.fixture(scope="session")
def real_artifacts(mender_tool_artifacts: Path) -> Path:
    """Artifacts made by Mender's own `mender-artifact` at test time."""
    return mender_tool_artifacts


@pytest.fixture(scope="session")
def rsa_key() -> keys.PrivateKey:
    return keys.generate("rsa2048")


@pytest.fixture(scope="session")
def ecdsa_key() -> keys.PrivateKey:
    return keys.generate("ecdsa-p256")


@pytest.fixture(scope="session")
def other_rsa_key() -> keys.PrivateKey:
    return keys.generate("rsa2048")
