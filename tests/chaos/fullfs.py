"""A small real filesystem that tests fill up: a tmpfs mounted for the test, unmounted after."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` at `where` (as root, else through `sudo -n`)."""
    where.mkdir(parents=True, exist_ok=True)
    prefix: tuple[str, ...] = () if os.geteuid() == 0 else ("sudo", "-n")
    options = f"size={size},mode=0777"
    result = _run(*prefix, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where))
    if result.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs at {where}: {result.stderr.strip()}")
    try:
        yield where
    finally:
        _run(*prefix, "umount", "-l", str(where))


def fill(directory: Path) -> Path:
    """Write a file until the filesystem holding `directory` has no byte left."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    with open(filler, "ab", buffering=0) as out:  # the last partial block too
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    assert shutil.disk_usage(directory).free < 4096
    return filler
