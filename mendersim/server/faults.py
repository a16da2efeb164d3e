"""Faults injected into the device API: latency, errors, 429s, dropped connections, maintenance.

Every decision comes from one seeded RNG in request order, so a test replaying the same requests
sees the same faults. Settings are kept in the text form users type (CLI options and the JSON of
`/_mendersim/faults` use the same strings) and compiled into per-endpoint rules.

Forms:
- latency: `50ms` (fixed), `normal:MEAN,STDDEV`, `uniform:LOW,HIGH`, `exp:MEAN`.
- error_rate: `ENDPOINT=SHARE[:CODE]` with CODE 500 (default) or 503.
- rate_limit: `ENDPOINT=SHARE:RETRY_AFTER_SECONDS` (that share answered 429) or
  `ENDPOINT=RATE/s` (a token bucket of RATE requests/s, one second of burst).
- drop_rate: `ENDPOINT=SHARE` (the connection is closed without an answer).
- maintenance: `START+DURATION[@EVERY]`, offsets from when the faults were set, e.g. `60s+30s`
  or `10m+1m@1h`; inside a window every device endpoint answers 503 with Retry-After.
ENDPOINT is one of auth, inventory, next, status, log, download, or `all`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from mendersim.errors import ConfigError
from mendersim.units import parse_duration, parse_probability

ENDPOINTS = ("auth", "inventory", "next", "status", "log", "download")
ERROR_CODES = (500, 503)


@dataclass(frozen=True, slots=True)
class Latency:
    kind: str  # fixed | normal | uniform | exp
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "normal":
            return max(0.0, rng.gauss(self.a, self.b))
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0


@dataclass(slots=True)
class TokenBucket:
    rate: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(slots=True)
class EndpointRules:
    error_share: float = 0.0
    error_code: int = 500
    limit_share: float = 0.0
    limit_retry_after: int = 0
    bucket: TokenBucket | None = None
    drop_share: float = 0.0


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    duration: float
    every: float | None

    def remaining(self, elapsed: float) -> float:
        """Seconds left in the window containing `elapsed`, or 0 when outside any window."""
        offset = elapsed - self.start
        if offset < 0:
            return 0.0
        if self.every:
            offset %= self.every
        return self.duration - offset if offset < self.duration else 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: wait `delay`, then answer `status` (None: serve) or drop."""

    delay: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    drop: bool = False


SERVE = Decision()


@dataclass(slots=True)
class FaultSettings:
    """The user-facing settings; `to_json`/`from_json` are the admin endpoint's body."""

    latency: str | None = None
    error_rate: list[str] = field(default_factory=list)
    rate_limit: list[str] = field(default_factory=list)
    drop_rate: list[str] = field(default_factory=list)
    maintenance: list[str] = field(default_factory=list)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "error_rate": list(self.error_rate),
            "rate_limit": list(self.rate_limit),
            "drop_rate": list(self.drop_rate),
            "maintenance": list(self.maintenance),
            "seed": self.seed,
        }

    def updated(self, data: Any, where: str) -> FaultSettings:
        """These settings with the fields present in `data` replaced (a PUT body)."""
        if not isinstance(data, dict):
            raise ConfigError(where, "expected a JSON object")
        unknown = set(data) - set(self.to_json())
        if unknown:
            raise ConfigError(where, f"unknown field(s) {', '.join(sorted(unknown))}")
        merged = self.to_json()
        merged.update(data)
        latency = merged["latency"]
        if latency is not None and not isinstance(latency, str):
            raise ConfigError(f"{where}: latency", "expected a string or null")
        lists = {}
        for name in ("error_rate", "rate_limit", "drop_rate", "maintenance"):
            value = merged[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: {name}", "expected a list of strings")
            lists[name] = value
        seed = merged["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"{where}: seed", "expected an integer")
        settings = FaultSettings(latency=latency or None, seed=seed, **lists)
        compile_settings(settings, 0.0)  # refuse bad values before they replace good ones
        return settings


def parse_latency(text: str, where: str) -> Latency:
    kind, _, args = text.partition(":")
    if not args:
        return Latency("fixed", parse_duration(text, where))
    values = [parse_duration(v, where) for v in args.split(",")]
    expected = {"normal": 2, "uniform": 2, "exp": 1}.get(kind)
    if expected is None or len(values) != expected:
        raise ConfigError(
            where,
            f"{text!r} is not a latency (50ms, normal:MEAN,STDDEV, uniform:LOW,HIGH, exp:MEAN)",
        )
    if kind == "uniform" and values[0] > values[1]:
        raise ConfigError(where, f"{text!r}: LOW is above HIGH")
    return Latency(kind, *values)


def _split_endpoint(text: str, where: str) -> tuple[tuple[str, ...], str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not value:
        raise ConfigError(where, f"{text!r} is not ENDPOINT=VALUE")
    if name == "all":
        return ENDPOINTS, value
    if name not in ENDPOINTS:
        raise ConfigError(where, f"unknown endpoint {name!r} (one of {', '.join(ENDPOINTS)}, all)")
    return (name,), value


def parse_window(text: str, where: str) -> Window:
    body, _, every = text.partition("@")
    start, sep, duration = body.partition("+")
    if not sep:
        raise ConfigError(where, f"{text!r} is not START+DURATION[@EVERY] (e.g. 60s+30s@10m)")
    window = Window(
        parse_duration(start, where),
        parse_duration(duration, where),
        parse_duration(every, where) if every else None,
    )
    if window.every is not None and window.every <= window.duration:
        raise ConfigError(where, f"{text!r}: EVERY must be longer than DURATION")
    return window


@dataclass(slots=True)
class CompiledFaults:
    latency: Latency | None
    rules: dict[str, EndpointRules]
    windows: list[Window]


def compile_settings(settings: FaultSettings, now: float) -> CompiledFaults:
    rules = {name: EndpointRules() for name in ENDPOINTS}
    for text in settings.error_rate:
        names, value = _split_endpoint(text, "--error-rate")
        share, _, code = value.partition(":")
        status = int(code) if code.isdigit() else (500 if not code else -1)
        if status not in ERROR_CODES:
            raise ConfigError("--error-rate", f"{text!r}: code must be 500 or 503")
        for name in names:
            rules[name].error_share = parse_probability(share, f"--error-rate {text}")
            rules[name].error_code = status
    for text in settings.rate_limit:
        names, value = _split_endpoint(text, "--rate-limit")
        for name in names:
            _apply_rate_limit(rules[name], text, value, now)
    for text in settings.drop_rate:
        names, value = _split_endpoint(text, "--drop-rate")
        for name in names:
            rules[name].drop_share = parse_probability(value, f"--drop-rate {text}")
    for name, rule in rules.items():
        if rule.drop_share + rule.limit_share + rule.error_share > 1 + 1e-9:
            raise ConfigError(
                f"endpoint {name}",
                "--drop-rate, --rate-limit and --error-rate shares add up to more than 1",
            )
    latency = parse_latency(settings.latency, "--latency") if settings.latency else None
    windows = [parse_window(t, "--maintenance") for t in settings.maintenance]
    return CompiledFaults(latency, rules, windows)


def _apply_rate_limit(rule: EndpointRules, text: str, value: str, now: float) -> None:
    where = f"--rate-limit {text}"
    if value.endswith("/s"):
        try:
            rate = float(value[:-2])
        except ValueError:
            rate = 0.0
        if rate <= 0:
            raise ConfigError(where, "RATE/s must be a positive number")
        rule.bucket = TokenBucket(rate, rate, now)
        return
    share, sep, retry = value.partition(":")
    if not sep or not retry.isdigit():
        raise ConfigError(where, "expected SHARE:RETRY_AFTER_SECONDS or RATE/s")
    rule.limit_share = parse_probability(share, where)
    rule.limit_retry_after = int(retry)


class FaultInjector:
    """Decides, per request, which fault (if any) hits it."""

    def __init__(self, settings: FaultSettings, now: float) -> None:
        self.apply(settings, now)

    def apply(self, settings: FaultSettings, now: float) -> None:
        """Replace the settings; maintenance offsets count from `now`."""
        compiled = compile_settings(settings, now)
        self.settings = settings
        self._compiled = compiled
        self._started = now
        self._rng = random.Random(settings.seed)
        self.active = bool(
            compiled.latency
            or compiled.windows
            or any(
                r.error_share or r.limit_share or r.bucket or r.drop_share
                for r in compiled.rules.values()
            )
        )

    def decide(self, endpoint: str, now: float) -> Decision:
        if not self.active:
            return SERVE
        compiled = self._compiled
        rng = self._rng
        delay = compiled.latency.sample(rng) if compiled.latency else 0.0
        for window in compiled.windows:
            left = window.remaining(now - self._started)
            if left > 0:
                return Decision(delay, 503, max(1, math.ceil(left)))
        rule = compiled.rules[endpoint]
        if rule.bucket is not None:
            wait = rule.bucket.take(now)
            if wait > 0:
                return Decision(delay, 429, max(1, math.ceil(wait)))
        if rule.drop_share or rule.limit_share or rule.error_share:
            # One draw split into disjoint ranges: each share is that share of all requests.
            u = rng.random()
            if u < rule.drop_share:
                return Decision(delay, drop=True)
            u -= rule.drop_share
            if u < rule.limit_share:
                return Decision(delay, 429, rule.limit_retry_after)
            if u - rule.limit_share < rule.error_share:
                return Decision(delay, rule.error_code)
        return Decision(delay) if delay else SERVE
