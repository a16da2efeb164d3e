"""Artifact writer and reader throughput, memory, and the same work done by mender-artifact.

    .venv/bin/python bench/bench_artifact.py [--size 100M] [--compressions gzip,none]

For each compression: write an artifact (payload generated from a seed), read it back from the
file and from a stream of 16 KiB chunks (as a download arrives), each in a fresh process so the
peak RSS growth is its own; then `mender-artifact write` and `validate` of the same payload, so
the ratios compare both tools on this machine in this run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mendersim.units import parse_size

_CHILD = """
import json, resource, sys, time
from mendersim.artifact.reader import read_artifact
from mendersim.artifact.writer import write_artifact

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def chunks(path, size):
    with open(path, "rb") as handle:
        while block := handle.read(size):
            yield block

action, path, size, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
before, start = peak(), time.perf_counter()
if action == "write":
    write_artifact(path, name="bench", device_types=["d"], payload_size=size,
                   compression=compression)
elif action == "read":
    with open(path, "rb") as handle:
        read_artifact(handle, device_type="d")
else:
    read_artifact(chunks(path, 16384), device_type="d")
print(json.dumps({"seconds": time.perf_counter() - start, "rss_growth": peak() - before}))
"""

# mender-artifact's name for each compression it knows (the Debian build has no zstd).
_THEIRS = {"gzip": "gzip", "xz": "lzma", "none": "none"}


def _ours(action: str, path: Path, size: int, compression: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, action, str(path), str(size), compression],
        capture_output=True, text=True, check=True, timeout=3600,
    )  # fmt: skip
    return json.loads(result.stdout)


def _timed(*command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, timeout=3600)
    return time.perf_counter() - start


def _payload_file(path: Path, size: int) -> None:
    from mendersim.artifact.payload import payload_chunks

    with path.open("wb") as handle:
        for chunk in payload_chunks(size):
            handle.write(chunk)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100MiB", help="payload size (default 100MiB)")
    parser.add_argument("--compressions", default="gzip,xz,zstd,none")
    args = parser.parse_args()
    size = parse_size(args.size, "--size")
    tool = shutil.which("mender-artifact")
    mb = size / 1e6
    print(f"payload {size} bytes; MB/s are payload MB per second; rss = peak RSS growth")
    print(f"{'compression':<12}{'write':>9}{'read':>9}{'read16K':>9}{'rss MiB':>9}"
          f"{'size %':>8}{'ma write':>10}{'ma valid':>10}{'w ratio':>9}{'r ratio':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mendersim-bench-") as tmp:
        work = Path(tmp)
        image = work / "rootfs.img"
        if tool:
            _payload_file(image, size)
        for compression in args.compressions.split(","):
            path = work / f"ours-{compression}.mender"
            write = _ours("write", path, size, compression)
            read = _ours("read", path, size, compression)
            streamed = _ours("stream", path, size, compression)
            rss = max(write["rss_growth"], read["rss_growth"], streamed["rss_growth"]) / 2**20
            line = (
                f"{compression:<12}{mb / write['seconds']:>9.1f}{mb / read['seconds']:>9.1f}"
                f"{mb / streamed['seconds']:>9.1f}{rss:>9.1f}"
                f"{100 * path.stat().st_size / size:>8.1f}"
            )
            if tool and compression in _THEIRS:
                theirs = work / f"theirs-{compression}.mender"
                their_write = _timed(tool, "write", "rootfs-image", "-n", "bench", "-t", "d",
                                     "-f", str(image), "--compression", _THEIRS[compression],
                                     "-o", str(theirs))  # fmt: skip
                their_read = _timed(tool, "validate", str(theirs))
                line += (
                    f"{mb / their_write:>10.1f}{mb / their_read:>10.1f}"
                    f"{their_write / write['seconds']:>9.2f}{their_read / read['seconds']:>9.2f}"
                )
            print(line, flush=True)
            path.unlink()
    print("w ratio / r ratio: mender-artifact time ÷ mendersim time (above 1 = mendersim faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
