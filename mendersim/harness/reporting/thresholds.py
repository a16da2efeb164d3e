"""Pass/fail rules for CI: a headless run judges itself against a YAML file of limits.

At the end of the run (on the master or a standalone process) every rule is measured against
Locust's final statistics, totalled across workers, and the fleet snapshot; the verdicts are
printed, written as JUnit XML and a Markdown summary, and decide the exit code. Requests that
failed within the limits do not fail the run: only rules do.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
import jsonschema
import yaml
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import RequestStats, StatsEntry

from mendersim.device import steps
from mendersim.errors import ConfigError
from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting import measures
from mendersim.harness.reporting import stats as names
from mendersim.harness.reporting.runinfo import RunInfo
from mendersim.report.junit import write_junit
from mendersim.report.markdown import markdown_summary, report_line, save_summary
from mendersim.report.results import NO_DATA, RuleResult, failed, text_table

logger = logging.getLogger(__name__)

DEPLOYMENT_DURATION = (names.DEPLOYMENT_DURATION, names.DEVICE)  # device-level, per update
NOT_EXCHANGES = (names.DEVICE, names.HARNESS)  # request types that are not HTTP exchanges
LAG_SAMPLE_S = 2.0


@dataclass(frozen=True, slots=True)
class Measurements:
    """What a finished run offers to measure."""

    stats: RequestStats
    fleet: FleetSnapshot | None
    measures: RequestStats | None = None  # DEVICE and HARNESS figures (harness.measures)

    def step(self, name: str) -> StatsEntry | None:
        """The step's statistics over all its request types, or None if it never ran."""
        entries = [e for (n, _), e in self.stats.entries.items() if n == name and e.num_requests]
        if len(entries) <= 1:
            return entries[0] if entries else None
        merged = StatsEntry(self.stats, name, "", use_response_times_cache=False)
        for entry in entries:
            merged.extend(entry)
        return merged

    def measured(self, name: str, request_type: str) -> StatsEntry | None:
        """A DEVICE or HARNESS figure, or None if it never was measured."""
        entry = None if self.measures is None else self.measures.entries.get((name, request_type))
        return entry if entry is not None and entry.num_requests else None

    def exchange_failure_ratio(self) -> float | None:
        """Failed HTTP exchanges over all of them; device and harness events are not requests."""
        exchanges = [e for (_, m), e in self.stats.entries.items() if m not in NOT_EXCHANGES]
        total = sum(e.num_requests for e in exchanges)
        return sum(e.num_failures for e in exchanges) / total if total else None


@dataclass(frozen=True, slots=True)
class Metric:
    """How one rule key is measured, and which side of the limit passes."""

    at_most: bool  # True: measured <= limit passes; False: measured >= limit passes
    unit: str
    measure: Callable[..., float | None]


def _percentile(percent: float) -> Callable[[StatsEntry], float]:
    return lambda entry: float(entry.get_response_time_percentile(percent))


STEP_METRICS = {
    "p50_ms": Metric(True, "ms", _percentile(0.5)),
    "p95_ms": Metric(True, "ms", _percentile(0.95)),
    "p99_ms": Metric(True, "ms", _percentile(0.99)),
    "avg_ms": Metric(True, "ms", lambda entry: entry.avg_response_time),
    "failure_ratio": Metric(True, "", lambda entry: entry.fail_ratio),
    "min_rps": Metric(False, "req/s", lambda entry: entry.total_rps),
}


def _update_time_p95_s(run: Measurements) -> float | None:
    entry = run.measured(*DEPLOYMENT_DURATION)
    return None if entry is None else entry.get_response_time_percentile(0.95) / 1000


FLEET_METRICS = {
    "accepted_share": Metric(
        False, "", lambda run: run.fleet.accepted_share_peak if run.fleet else None
    ),
    "deployment_success_rate": Metric(
        False, "", lambda run: run.fleet.success_rate() if run.fleet else None
    ),
    "rollout_seconds": Metric(
        True, "s", lambda run: run.fleet.rollout_finished_s if run.fleet else None
    ),
    "scheduler_lag_max_s": Metric(
        True, "s", lambda run: run.fleet.scheduler_lag_max_s if run.fleet else None
    ),
    "update_time_p95_s": Metric(True, "s", _update_time_p95_s),
}

RUN_METRICS = {
    "failure_ratio": Metric(True, "", lambda run: run.exchange_failure_ratio()),
}

_RATIO = {"type": "number", "minimum": 0, "maximum": 1}
_NON_NEGATIVE = {"type": "number", "minimum": 0}


def _section_schema(metrics: dict[str, Metric]) -> dict[str, Any]:
    properties = {
        key: _RATIO if key.endswith(("_ratio", "_rate", "_share")) else _NON_NEGATIVE
        for key in metrics
    }
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "minProperties": 1,
    }


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "steps": {"type": "object", "additionalProperties": _section_schema(STEP_METRICS)},
        "fleet": _section_schema(FLEET_METRICS),
        "run": _section_schema(RUN_METRICS),
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["steps"]}, {"required": ["fleet"]}, {"required": ["run"]}],
}


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # e.g. "steps.auth.p95_ms"
    limit: float
    metric: Metric
    step: str | None  # the step a per-step rule measures

    def check(self, run: Measurements) -> RuleResult:
        if self.step is not None:
            entry = run.step(self.step)
            measured = None if entry is None else self.metric.measure(entry)
        else:
            measured = self.metric.measure(run)
        if measured is None:
            return RuleResult(self.name, self._limit_text(), NO_DATA, passed=False)
        passed = measured <= self.limit if self.metric.at_most else measured >= self.limit
        return RuleResult(
            self.name, self._limit_text(), _format(measured, self.metric.unit), passed
        )

    def _limit_text(self) -> str:
        return f"{'<=' if self.metric.at_most else '>='} {_format(self.limit, self.metric.unit)}"


def _format(value: float, unit: str) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}" if unit else text


def load_rules(path: str) -> list[Rule]:
    """Read and validate a rules file; any problem is one ConfigError naming file and key."""
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except OSError as exc:
        raise ConfigError(path, exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ConfigError(where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)
    )
    if error is not None:
        key = ".".join(str(part) for part in error.absolute_path) or "top level"
        raise ConfigError(f"{path}: {key}", error.message)
    unknown = sorted(set(document.get("steps", {})) - set(steps.known()))
    if unknown:
        raise ConfigError(
            f"{path}: steps.{unknown[0]}",
            f"no such step (known: {', '.join(steps.known())})",
        )
    rules = [
        Rule(f"steps.{step}.{key}", limit, STEP_METRICS[key], step)
        for step, limits in document.get("steps", {}).items()
        for key, limit in limits.items()
    ]
    for section, metrics in (("fleet", FLEET_METRICS), ("run", RUN_METRICS)):
        rules.extend(
            Rule(f"{section}.{key}", limit, metrics[key], None)
            for key, limit in document.get(section, {}).items()
        )
    return rules


def evaluate(rules: Sequence[Rule], run: Measurements) -> list[RuleResult]:
    return [rule.check(run) for rule in rules]


def _rules_file(path: str) -> str:
    """argparse type: validate the rules file when the options are parsed, keep the path (the
    options travel to workers as plain values)."""
    if path:
        try:
            load_rules(path)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def add_options(parser: Any) -> None:
    parser.add_argument(
        "--thresholds",
        type=_rules_file,
        default="",
        env_var="MENDERSIM_THRESHOLDS",
        help="YAML rules file; the run fails (exit code 1) when any rule fails",
    )
    parser.add_argument(
        "--thresholds-junit",
        default="",
        env_var="MENDERSIM_THRESHOLDS_JUNIT",
        help="Write the verdicts as JUnit XML here, one test case per rule",
    )
    parser.add_argument(
        "--thresholds-summary",
        default="",
        env_var="MENDERSIM_THRESHOLDS_SUMMARY",
        help="Write a Markdown summary here (default: append to $GITHUB_STEP_SUMMARY if set)",
    )


class LagWatch:
    """The fleet snapshot's scheduler lag covers only its last interval; sampling it through the
    run keeps the worst, which is what a maximum-lag rule is about (ramp-ups are the worst)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.worst = 0.0
        self._greenlet: gevent.Greenlet | None = None

    def on_test_start(self, **_: Any) -> None:
        options = self.environment.parsed_options
        if self._greenlet is None and options is not None and options.thresholds:
            self._greenlet = gevent.spawn(self._watch)

    def sample(self) -> FleetSnapshot | None:
        fleet = getattr(self.environment, "mendersim_fleet", None)
        if fleet is None:
            return None
        snapshot = fleet.snapshot()
        self.worst = max(self.worst, snapshot.scheduler_lag_max_s)
        return snapshot

    def final(self) -> FleetSnapshot | None:
        if self._greenlet is not None:
            self._greenlet.kill()
        try:
            snapshot = self.sample()
        except Exception as exc:  # fleet rules then fail with "no data"
            logger.error("Fleet snapshot failed, fleet rules have no data: %r", exc)
            return None
        if snapshot is None:
            return None
        return dataclasses.replace(snapshot, scheduler_lag_max_s=self.worst)

    def _watch(self) -> None:
        while True:
            gevent.sleep(LAG_SAMPLE_S)
            try:
                self.sample()
            except Exception as exc:  # the fleet's own bug; final() reports it if it lasts
                logger.warning("Fleet snapshot failed: %r", exc)


def judge(environment: Environment, fleet: FleetSnapshot | None) -> list[RuleResult] | None:
    """Check the rules at the end of a run and report; None when no rules were given."""
    options = environment.parsed_options
    if options is None or not options.thresholds:
        return None
    try:
        rules = load_rules(options.thresholds)
    except ConfigError as exc:  # changed since the options were parsed
        logger.error("Thresholds not checked: %s", exc)
        environment.process_exit_code = max(environment.process_exit_code or 0, 2)
        return None
    run = Measurements(environment.stats, fleet, measures.of(environment).stats)
    results = evaluate(rules, run)
    environment.mendersim_verdict = results  # for the closing console summary
    print(text_table(results), flush=True)
    now = time.time()
    if options.thresholds_junit:
        write_junit(results, options.thresholds_junit, now)
    about = RunInfo.from_options(options).markdown()
    summary = markdown_summary(results, os.path.basename(options.thresholds), about)
    report = getattr(environment, "mendersim_report", None)  # written before the verdict
    if report is not None:
        summary += "\n" + report_line(str(report), fleet)
    if options.thresholds_summary:
        save_summary(summary, options.thresholds_summary, append=False)
    elif os.environ.get("GITHUB_STEP_SUMMARY"):
        save_summary(summary, os.environ["GITHUB_STEP_SUMMARY"], append=True)
    if failed(results):
        environment.process_exit_code = max(environment.process_exit_code or 0, 1)
    elif environment.process_exit_code is None:
        environment.process_exit_code = 0  # requests may have failed, but within the limits
    return results


def setup(events: Any) -> None:
    """Add the options and judge the run when the master or a standalone process quits."""
    events.init_command_line_parser.add_listener(add_options)

    def on_init(environment: Environment, **_: Any) -> None:
        if isinstance(environment.runner, WorkerRunner):
            return
        watch = LagWatch(environment)

        def on_quitting(environment: Environment, **_: Any) -> None:
            judge(environment, watch.final())

        environment.events.test_start.add_listener(watch.on_test_start)
        environment.events.quitting.add_listener(on_quitting)

    events.init.add_listener(on_init)
