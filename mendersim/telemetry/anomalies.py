"""Where anomalies fall, decided per (device, stream, slot) from the fleet seed.

Time is cut into slots of `slot_s` simulated seconds (aligned to the Unix epoch). In each slot a
stream starts an anomaly with the device's anomaly rate; its type is drawn by weight, its
duration within the type's span, and its start so that it ends inside the slot. Anomalies of one
stream therefore never overlap, and whether a reading at time t is anomalous needs only t's slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mendersim.device import decide
from mendersim.telemetry.spec import AnomalyType


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One injected anomaly, as the ground truth records it (times in simulated Unix seconds)."""

    stream: str
    type: str
    start: float
    end: float
    magnitude: float

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end

    def progress(self, t: float) -> float:
        """How far into the anomaly t is, from 0 to 1."""
        span = self.end - self.start
        return (t - self.start) / span if span > 0 else 1.0


def in_slot(
    types: tuple[AnomalyType, ...],
    rate: float,
    slot_s: float,
    seed: int,
    device_id: str,
    stream: str,
    slot: int,
) -> Anomaly | None:
    """The anomaly a stream has in a slot, or None."""
    if rate <= 0:
        return None
    key = f"{stream}\x1f{slot}"
    if decide.fraction(seed, device_id, "anomaly", key) >= rate:
        return None
    weights = [(t.name, t.weight) for t in types if t.weight > 0]
    name = decide.weighted_choice(weights, decide.fraction(seed, device_id, "anomaly-type", key))
    kind = next(t for t in types if t.name == name)
    duration = decide.between(
        kind.min_s, kind.max_s, decide.fraction(seed, device_id, "anomaly-duration", key)
    )
    offset = (slot_s - duration) * decide.fraction(seed, device_id, "anomaly-start", key)
    start = slot * slot_s + offset
    return Anomaly(stream, name, start, start + duration, kind.magnitude)


def slot_of(t: float, slot_s: float) -> int:
    return math.floor(t / slot_s)
