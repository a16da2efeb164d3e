"""Fixtures for the fleet tests: small fleets written as a user would write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def write_fleet(tmp_path: Path) -> Callable[..., Path]:
    """Write `<tmp>/industries/<name>.yaml` for each profile and `<tmp>/fleets/fleet.yaml`."""

    def write(
        groups: list[tuple[str, int]],
        *,
        profiles: dict[str, dict[str, Any]] | None = None,
        seed: int = 7,
        **fields: Any,
    ) -> Path:
        (tmp_path / "industries").mkdir(exist_ok=True)
        (tmp_path / "fleets").mkdir(exist_ok=True)
        for name, document in (profiles or {}).items():
            text = yaml.safe_dump(document, sort_keys=False)
            (tmp_path / "industries" / f"{name}.yaml").write_text(text)
        config = {
            "server_url": "http://127.0.0.1:8080",
            "seed": seed,
            **fields,
            "groups": [{"profile": p, "count": c} for p, c in groups],
        }
        path = tmp_path / "fleets" / "fleet.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write
