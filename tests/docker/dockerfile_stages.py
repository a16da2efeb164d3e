"""What docker/Dockerfile says, per build stage: the entrypoints and health checks that the
compose services and the tests take from it."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str, str]]:
    """(stage, instruction, argument) with continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stage, found = "", []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            stage = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        found.append((stage, word, rest.strip()))
    return found


def entrypoint(stage: str) -> list[str]:
    return next(json.loads(r) for s, w, r in instructions() if s == stage and w == "ENTRYPOINT")


def healthcheck(stage: str) -> list[str]:
    """The exec form after CMD, options dropped."""
    rest = next(r for s, w, r in instructions() if s == stage and w == "HEALTHCHECK")
    return json.loads(rest[rest.index("CMD") + 3 :])
