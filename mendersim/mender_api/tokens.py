"""Management tokens from a file or the environment: never from a command line, which every
user of the machine can read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mendersim.errors import ConfigError


def read_token_file(path: str, option: str) -> str:
    """The token a file holds (surrounding whitespace stripped); errors name the option."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(option, f"{path}: {exc.strerror or exc}") from None
    if not token:
        raise ConfigError(option, f"{path}: the file is empty")
    return token


def management_token(file: str, variables: Sequence[str], option: str) -> str:
    """From `file` when given, else from the first environment variable that is set."""
    if file:
        return read_token_file(file, option)
    for name in variables:
        if os.environ.get(name):
            return os.environ[name]
    raise ConfigError(option, f"a management token is needed: give {option} or set {variables[0]}")
