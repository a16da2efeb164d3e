"""Writing and reading a large artifact keeps memory flat (measured in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PAYLOAD = 200 * 1024 * 1024

_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from mendersim.artifact.reader import read_artifact
    from mendersim.artifact.writer import write_artifact

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    path, size = sys.argv[1], int(sys.argv[2])
    before = peak()
    written = write_artifact(path, name="big", device_types=["d"], payload_size=size,
                             compression="none")
    after_write = peak()
    with open(path, "rb") as handle:
        read = read_artifact(handle, device_type="d")
    print(json.dumps({"before": before, "write": after_write, "read": peak(),
                      "same": read == written, "size": read.size}))
    """
)


def test_large_artifact_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.mender"
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path), str(PAYLOAD)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    figures = json.loads(result.stdout)
    assert figures["same"]
    assert figures["size"] == path.stat().st_size > PAYLOAD
    # well under a tenth of the payload, whatever the interpreter's own footprint
    assert figures["write"] - figures["before"] < PAYLOAD / 10
    assert figures["read"] - figures["before"] < PAYLOAD / 10
