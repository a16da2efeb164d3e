"""The ground truth of injected anomalies: one JSON line per anomaly a device's readings carry.

A detector under test is scored against this file: `device`, `profile`, `stream`, `type`, and
`start`/`end` in the same simulated Unix seconds as the readings' timestamps. An anomaly is written
when the first reading it affects is generated, so the file holds exactly what subscribers saw
begin (a run that stops mid-anomaly still records its planned end).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from mendersim.telemetry.anomalies import Anomaly

FLUSH_EVERY = 200  # lines; close() writes the rest


class TruthWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._pending = 0
        self.written = 0

    def record(self, device_id: str, profile: str, anomaly: Anomaly) -> None:
        if self._file is None:
            return
        line = {
            "device": device_id,
            "profile": profile,
            "stream": anomaly.stream,
            "type": anomaly.type,
            "start": round(anomaly.start, 3),
            "end": round(anomaly.end, 3),
        }
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.written += 1
        self._pending += 1
        if self._pending >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._file is not None and self._pending:
            self._file.flush()
            self._pending = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def read_truth(path: str | Path) -> list[dict]:
    """The records of a ground-truth file (for scoring and for tests)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
