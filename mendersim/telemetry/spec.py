"""A profile's `telemetry:` section read into frozen specs, shared by every device of the profile.

The schema (schema.py) checks the shape; this module fills defaults, checks what a schema cannot
say (spans, duplicate names, durations longer than a slot) and resolves a device's anomaly rate
through the profile's quirks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mendersim.device import decide
from mendersim.errors import ConfigError
from mendersim.telemetry.schema import ANOMALY_TYPES

DEFAULT_INTERVAL_S = 60.0
DEFAULT_SLOT_S = 3600.0
DEFAULT_WINDOW_S = 60.0
DEFAULT_AGGREGATES = ("min", "max", "mean", "count")
DEFAULT_GATEWAY_BUFFER = 10_000
# Default anomaly shapes: weight, shortest and longest duration (s), magnitude (see anomalies.py).
DEFAULT_TYPES: dict[str, tuple[float, float, float, float]] = {
    "spike": (4, 30, 120, 8.0),
    "drift": (2, 600, 1800, 10.0),
    "pattern_change": (1, 900, 1800, 1.0),
    "missing": (2, 120, 600, 0.0),
    "noise_burst": (2, 120, 600, 5.0),
}


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    kind: str  # gauge | event
    unit: str
    base: float  # gauge: level; event: probability of a 1 per reading
    amplitude: float  # daily cycle, peak-to-mean
    peak_hour: float  # UTC hour of the daily maximum
    noise: float  # standard deviation of white noise
    drift_per_day: float  # calibration drift; sensors are recalibrated every DRIFT_PERIOD_DAYS
    low: float | None
    high: float | None
    interval_s: float  # between readings, in simulated seconds
    qos: int
    # edge rules (a gateway's): report by exception past this band instead of aggregating
    deadband: float | None = None
    alert_above: float | None = None  # an alert is sent at once when a reading crosses a limit
    alert_below: float | None = None

    @property
    def sigma(self) -> float:
        """The unit anomaly magnitudes are measured in: the noise, or 1 for noiseless streams."""
        return self.noise if self.noise > 0 else 1.0


@dataclass(frozen=True, slots=True)
class AnomalyType:
    name: str
    weight: float
    min_s: float
    max_s: float
    magnitude: float


@dataclass(frozen=True, slots=True)
class Location:
    name: str
    weight: float
    offsets: tuple[tuple[str, float], ...]
    amplitude: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """A gateway's edge processing: its child sensors and what it sends of their readings."""

    children: int
    window_s: float  # aggregates cover epoch-aligned windows of this many simulated seconds
    aggregates: tuple[str, ...]
    buffer: int  # messages kept while offline; beyond it the oldest are dropped and counted
    qos: int


@dataclass(frozen=True, slots=True)
class TelemetrySpec:
    profile: str
    streams: tuple[StreamSpec, ...]
    batch: int
    encoding: str
    rate: float  # chance per stream per slot that an anomaly starts
    slot_s: float
    types: tuple[AnomalyType, ...]
    locations: tuple[Location, ...]
    quirk_rates: tuple[tuple[tuple[tuple[str, Any], ...], float], ...]
    gateway: GatewaySpec | None = None

    def anomaly_rate(self, attributes: Mapping[str, Any]) -> float:
        """The profile's rate, or that of the last quirk matching the device's attributes."""
        rate = self.rate
        for match, quirk_rate in self.quirk_rates:
            if all(attributes.get(key) == value for key, value in match):
                rate = quirk_rate
        return rate

    def location(self, seed: int, device_id: str) -> Location | None:
        if not self.locations:
            return None
        u = decide.fraction(seed, device_id, "telemetry-location")
        name = decide.weighted_choice([(loc.name, loc.weight) for loc in self.locations], u)
        return next(loc for loc in self.locations if loc.name == name)


def from_profile(profile: Mapping[str, Any], where: str = "") -> TelemetrySpec | None:
    """The spec of a validated profile, or None when it has no enabled telemetry section;
    errors are named after `where` (default: the profile's name)."""
    section = profile.get("telemetry")
    if not section or not section.get("enabled", True):
        return None
    name = str(profile.get("name", "profile"))
    where = where or f"profile {name}: telemetry"
    interval = float(section.get("interval_s", DEFAULT_INTERVAL_S))
    qos = int(section.get("qos", 0))
    streams = tuple(
        _stream(s, interval, qos, f"{where}.streams[{i}]") for i, s in enumerate(section["streams"])
    )
    names = [s.name for s in streams]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}.streams", "stream names must be unique")
    anomalies = section.get("anomalies") or {}
    slot = float(anomalies.get("slot_s", DEFAULT_SLOT_S))
    types = _types(anomalies.get("types"), slot, f"{where}.anomalies.types")
    gateway = _gateway(section.get("gateway"), qos, streams, where)
    return TelemetrySpec(
        profile=name,
        streams=streams,
        batch=int(section.get("batch", 1)),
        encoding=str(section.get("encoding", "json")),
        rate=float(anomalies.get("rate", 0.0)),
        slot_s=slot,
        types=types,
        locations=tuple(
            Location(
                loc["name"],
                float(loc["weight"]),
                tuple((k, float(v)) for k, v in (loc.get("offsets") or {}).items()),
                tuple((k, float(v)) for k, v in (loc.get("amplitude") or {}).items()),
            )
            for loc in section.get("locations") or ()
        ),
        quirk_rates=tuple(
            (tuple(q["match"].items()), float(q["anomaly_rate"]))
            for q in profile.get("quirks") or ()
            if "anomaly_rate" in q
        ),
        gateway=gateway,
    )


def _gateway(
    doc: Mapping[str, Any] | None, qos: int, streams: tuple[StreamSpec, ...], where: str
) -> GatewaySpec | None:
    """The gateway's spec; edge rules on the streams of a device that is no gateway are an
    error, since nothing would apply them."""
    if not doc:
        for i, stream in enumerate(streams):
            for key in ("deadband", "alert_above", "alert_below"):
                if getattr(stream, key) is not None:
                    raise ConfigError(
                        f"{where}.streams[{i}].{key}", "an edge rule: it needs telemetry.gateway"
                    )
        return None
    window = float(doc.get("window_s", DEFAULT_WINDOW_S))
    for i, stream in enumerate(streams):
        if stream.deadband is None and stream.interval_s > window:
            raise ConfigError(
                f"{where}.streams[{i}].interval_s",
                f"{stream.interval_s:g} s is longer than the gateway's window ({window:g} s)",
            )
    return GatewaySpec(
        children=int(doc["children"]),
        window_s=window,
        aggregates=tuple(doc.get("aggregates", DEFAULT_AGGREGATES)),
        buffer=int(doc.get("buffer", DEFAULT_GATEWAY_BUFFER)),
        qos=int(doc.get("qos", qos)),
    )


def _stream(doc: Mapping[str, Any], interval: float, qos: int, where: str) -> StreamSpec:
    daily = doc.get("daily") or {}
    span = doc.get("range") or {}
    low, high = span.get("min"), span.get("max")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{where}.range", "min is greater than max")
    kind = str(doc.get("kind", "gauge"))
    base = float(doc["base"])
    if kind == "event" and not 0 <= base <= 1:
        raise ConfigError(f"{where}.base", "an event stream's base is a probability in [0, 1]")
    above, below = doc.get("alert_above"), doc.get("alert_below")
    if above is not None and below is not None and below >= above:
        raise ConfigError(f"{where}.alert_below", "must be lower than alert_above")
    return StreamSpec(
        name=str(doc["name"]),
        kind=kind,
        unit=str(doc.get("unit", "")),
        base=base,
        amplitude=float(daily.get("amplitude", 0.0)),
        peak_hour=float(daily.get("peak_hour", 14.0)),
        noise=float(doc.get("noise", 0.0)),
        drift_per_day=float(doc.get("drift_per_day", 0.0)),
        low=None if low is None else float(low),
        high=None if high is None else float(high),
        interval_s=float(doc.get("interval_s", interval)),
        qos=int(doc.get("qos", qos)),
        deadband=None if doc.get("deadband") is None else float(doc["deadband"]),
        alert_above=None if above is None else float(above),
        alert_below=None if below is None else float(below),
    )


def _types(doc: Mapping[str, Any] | None, slot: float, where: str) -> tuple[AnomalyType, ...]:
    chosen = doc or {name: None for name in ANOMALY_TYPES}
    out = []
    for name, given in chosen.items():
        weight, low, high, magnitude = DEFAULT_TYPES[name]
        if given:
            weight = float(given["weight"])
            low, high = float(given["duration_s"]["min"]), float(given["duration_s"]["max"])
            magnitude = float(given.get("magnitude", magnitude))
        if low > high:
            raise ConfigError(f"{where}.{name}.duration_s", "min is greater than max")
        if high > slot:
            raise ConfigError(
                f"{where}.{name}.duration_s",
                f"max {high:g} s is longer than the anomaly slot ({slot:g} s)",
            )
        out.append(AnomalyType(name, weight, low, high, magnitude))
    if not any(t.weight > 0 for t in out):
        raise ConfigError(where, "at least one anomaly type needs a weight above zero")
    return tuple(out)
