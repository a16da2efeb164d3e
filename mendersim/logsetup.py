"""Logging for the `mendersim` loggers: a rotating `simulator.log`, a quiet console.

The file gets the simulator's decisions at the configured level; the console shows only
warnings and errors unless asked, so a run's terminal stays readable.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mendersim.errors import ConfigError

LOGGER = "mendersim"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_mendersim_handler"  # handlers this module installed, replaced on reconfiguration


def _level(value: str | int, where: str) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(value.upper())
    if not isinstance(level, int):
        raise ConfigError(where, f"unknown log level {value!r} (DEBUG, INFO, WARNING, ERROR)")
    return level


def configure_logging(
    file: str | Path | None = "simulator.log",
    level: str | int = "INFO",
    console_level: str | int = "WARNING",
    max_bytes: int = 10 << 20,
    backups: int = 5,
    console_info: tuple[str, ...] = (),
) -> logging.Logger:
    """Send `mendersim.*` records to a rotating file (None: no file) and to stderr.

    The console shows `console_level` and above, plus INFO from the loggers named in
    `console_info` (run-level news such as the harness's, never per-device decisions).
    Calling it again replaces what an earlier call installed.
    """
    file_level = _level(level, "--log-level")
    console = _level(console_level, "console log level")
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    if file is not None:
        path = Path(file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            rotating = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        except OSError as exc:
            raise ConfigError(str(path), f"cannot open log file: {exc.strerror}") from None
        rotating.setLevel(file_level)
        handlers.append(rotating)
    stream = logging.StreamHandler(sys.stderr)
    if console_info and console > logging.INFO:
        stream.addFilter(_ConsoleFilter(console, console_info))
        console = logging.INFO
    stream.setLevel(console)
    handlers.append(stream)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
    logger.setLevel(min(file_level if file is not None else console, console))
    logger.propagate = False
    return logger


class _ConsoleFilter(logging.Filter):
    def __init__(self, level: int, chatty: tuple[str, ...]) -> None:
        super().__init__()
        self.level = level
        self.chatty = chatty

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.name.startswith(self.chatty)


def configure_from(
    section: Mapping[str, Any] | None,
    *,
    file: str | None = None,
    level: str | None = None,
    console_info: tuple[str, ...] = (),
) -> logging.Logger:
    """Configure from a fleet config's `logging` section; command-line values win."""
    merged = {"file": "simulator.log", "level": "INFO", "max_bytes": 10 << 20, "backups": 5}
    merged.update(section or {})
    return configure_logging(
        file=file or merged["file"],
        level=level or merged["level"],
        max_bytes=int(merged["max_bytes"]),
        backups=int(merged["backups"]),
        console_info=console_info,
    )
