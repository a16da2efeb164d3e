"""What a run needs before it starts: a seeded store and, without --host, the embedded server."""

from __future__ import annotations

import logging
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from mendersim.errors import ERROR_PREFIX, ConfigError, MendersimError

logger = logging.getLogger(__name__)


def ensure_seeded(db: str, fleet: str) -> None:
    """Seed `fleet` into `db` when the store does not exist yet (as `mendersim seed` does)."""
    if Path(db).exists():
        return
    if not fleet:
        raise ConfigError("--mendersim-db", f"{db}: no such seed store (give --mendersim-fleet)")
    logger.info("seeding %s from %s", db, fleet)
    command = [sys.executable, "-m", "mendersim.cli", "seed", fleet, "--db", db]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # The seed's own one-line error, without its prefix: the run prints it once, prefixed.
        lines = (result.stderr or result.stdout).strip().splitlines()
        line = lines[-1].removeprefix(ERROR_PREFIX) if lines else f"seeding {fleet} failed"
        error = MendersimError(line)
        error.exit_code = result.returncode
        raise error


def start_embedded_server(stack: ExitStack, log_file: str = "") -> Any:
    """Start the embedded Mender server on a free local port; it stops when `stack` closes.

    Devices are accepted automatically, as after pre-authorisation on a real server. Its log
    goes to `log_file` when given (kept), else to a temporary file removed once it is up.
    """
    from mendersim.server.process import running_server

    log = Path(log_file) if log_file else None
    handle = stack.enter_context(running_server("--acceptance", "auto", log_file=log))
    logger.info("embedded Mender server at %s", handle.url)
    return handle
