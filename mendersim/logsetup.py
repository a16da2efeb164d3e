"""Logging for the `mendersim` loggers: a rotating `simulator.log`, a quiet console.

The file gets the simulator's decisions at the configured level; the console shows only
warnings and errors unless asked, so a run's terminal stays readable.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

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
) -> logging.Logger:
    """Send `mendersim.*` records to a rotating file (None: no file) and to stderr.

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
    stream.setLevel(console)
    handlers.append(stream)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
    logger.setLevel(min(file_level if file is not None else console, console))
    logger.propagate = False
    return logger
