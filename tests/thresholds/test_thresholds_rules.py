"""Rules files are validated with one-line errors; each rule is measured against Locust's
statistics and the fleet snapshot; verdicts become a table, JUnit XML and Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from locust.env import Environment
from locust.stats import RequestStats

from mendersim.errors import ConfigError
from mendersim.harness.coordination.snapshot import FleetSnapshot
from mendersim.harness.reporting.thresholds import (
    LagWatch,
    Measurements,
    evaluate,
    judge,
    load_rules,
)
from mendersim.report.results import text_table

REPO = Path(__file__).resolve().parents[2]


def rules_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return str(path)


def stats_with(requests: dict[tuple[str, str], list[tuple[float, bool]]]) -> RequestStats:
    stats = RequestStats()
    for (name, method), samples in requests.items():
        for response_time, failed in samples:
            stats.log_request(method, name, response_time, 0)
            if failed:
                stats.log_error(method, name, RuntimeError("boom"))
    return stats


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps:\n  auth:\n    p96_ms: 5\n", ": steps.auth: Additional properties are not allowed"),
        ("steps:\n  auth:\n    p95_ms: -1\n", ": steps.auth.p95_ms: -1 is less than the minimum"),
        (
            "fleet:\n  deployment_success_rate: 99.5\n",
            ": fleet.deployment_success_rate: 99.5 is greater than the maximum of 1",
        ),
        ("run:\n  failure_ratio: high\n", ": run.failure_ratio: 'high' is not of type 'number'"),
        ("fleets:\n  rollout_seconds: 3\n", ": top level: Additional properties are not allowed"),
        ("", ": top level: None is not of type 'object'"),
        ("steps: [auth\n", ":2: not valid YAML"),
        ("steps:\n  authh: {p95_ms: 5}\n", ": steps.authh: no such step (known: auth,"),
    ],
)
def test_bad_rules_files_give_one_line_errors_naming_file_and_key(tmp_path, text, message):
    path = rules_file(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_rules(path)
    assert str(raised.value).startswith(path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_rules_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: No such file"):
        load_rules(str(tmp_path / "nope.yaml"))


def test_shipped_examples_are_valid():
    examples = sorted((REPO / "profiles" / "thresholds").glob("*.yaml"))
    assert "update-service-kpis.yaml" in [p.name for p in examples]
    for path in examples:
        assert load_rules(str(path))


def test_update_service_kpis():
    rules = {
        r.name: r for r in load_rules(str(REPO / "profiles/thresholds/update-service-kpis.yaml"))
    }
    stats = stats_with({("deployment duration", "DEVICE"): [(240_000, False)] * 20})
    good = FleetSnapshot(outcomes={"success": 1996, "failure": 4})  # 99.8 %
    bad = FleetSnapshot(outcomes={"success": 990, "failure": 10})  # 99.0 %
    kpis = [rules["fleet.update_time_p95_s"], rules["fleet.deployment_success_rate"]]
    http = RequestStats()
    assert [r.passed for r in evaluate(kpis, Measurements(http, good, stats))] == [True, True]
    assert [r.passed for r in evaluate(kpis, Measurements(http, bad, stats))] == [True, False]
    slow = stats_with({("deployment duration", "DEVICE"): [(360_000, False)] * 20})
    assert [r.passed for r in evaluate(kpis, Measurements(http, good, slow))] == [False, True]
    # In Locust's request statistics a deployment duration is not a device figure.
    assert evaluate(kpis[:1], Measurements(slow, good))[0].measured == "no data"


def test_step_rules_pass_fail_and_no_data(tmp_path):
    rules = load_rules(
        rules_file(
            tmp_path,
            (
                "steps:\n"
                "  auth: {p50_ms: 100, p99_ms: 100, avg_ms: 60, failure_ratio: 0.1}\n"
                "  download: {p95_ms: 10}\n"  # a known step that never ran
                "run: {failure_ratio: 0.01}\n"
            ),
        )
    )
    stats = stats_with(
        {
            ("auth", "POST"): [(50, False)] * 90 + [(500, True)] * 10,
            ("time to accepted", "DEVICE"): [(9000, False)] * 100,  # not an exchange: not counted
        }
    )
    results = {r.rule: r for r in evaluate(rules, Measurements(stats, None))}
    assert results["steps.auth.p50_ms"].passed
    assert (
        results["steps.auth.p99_ms"].measured == "500 ms"
        and not results["steps.auth.p99_ms"].passed
    )
    assert (
        results["steps.auth.avg_ms"].measured == "95 ms" and not results["steps.auth.avg_ms"].passed
    )
    assert results["steps.auth.failure_ratio"].passed  # 0.1 <= 0.1: limits are inclusive
    assert results["steps.download.p95_ms"].verdict == "FAIL (no data)"
    assert (
        results["run.failure_ratio"].measured == "0.1" and not results["run.failure_ratio"].passed
    )


def test_a_step_is_judged_over_all_its_request_types(tmp_path):
    rules = load_rules(rules_file(tmp_path, "steps:\n  download: {failure_ratio: 0.3}\n"))
    stats = stats_with({("download", "GET"): [(5, False)] * 3, ("download", "HEAD"): [(5, True)]})
    [result] = evaluate(rules, Measurements(stats, None))
    assert result.measured == "0.25" and result.passed


def test_fleet_rules_without_a_fleet_have_no_data(tmp_path):
    rules = load_rules(
        rules_file(
            tmp_path,
            (
                "fleet:\n  deployment_success_rate: 0.9\n  rollout_seconds: 60\n"
                "  scheduler_lag_max_s: 1\n"
            ),
        )
    )
    assert {r.measured for r in evaluate(rules, Measurements(RequestStats(), None))} == {"no data"}
    unfinished = FleetSnapshot(outcomes={"success": 1}, scheduler_lag_max_s=2.5)
    verdicts = [r.verdict for r in evaluate(rules, Measurements(RequestStats(), unfinished))]
    assert verdicts == ["PASS", "FAIL (no data)", "FAIL"]


def _environment(tmp_path: Path, rules: str, stats: RequestStats, **options) -> Environment:
    parsed = SimpleNamespace(
        thresholds=rules_file(tmp_path, rules),
        thresholds_junit=str(tmp_path / "out/junit.xml"),
        thresholds_summary="",
        **options,
    )
    environment = Environment(parsed_options=parsed)
    environment.stats = stats
    return environment


def test_judge_exit_codes_and_reports(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    stats = stats_with({("auth", "POST"): [(50, False)] * 9 + [(50, True)]})

    within = _environment(tmp_path, "steps:\n  auth: {failure_ratio: 0.2}\n", stats)
    judge(within, None)
    assert within.process_exit_code == 0  # a request failed, but within the limit

    beyond = _environment(tmp_path, "steps:\n  auth: {failure_ratio: 0.05, p95_ms: 80}\n", stats)
    judge(beyond, None)
    assert beyond.process_exit_code == 1
    printed = capsys.readouterr().out
    assert "steps.auth.failure_ratio  <= 0.05   0.1       FAIL" in printed
    assert "Thresholds FAILED: 1 of 2 rules failed" in printed

    suite = ET.parse(tmp_path / "out/junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["steps.auth.failure_ratio"].find("failure").get("message") == (
        "steps.auth.failure_ratio: measured 0.1, limit <= 0.05"
    )
    assert cases["steps.auth.p95_ms"].find("failure") is None

    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, as GitHub expects
    assert text.count("## mendersim thresholds: rules.yaml") == 2
    assert "| steps.auth.failure_ratio | <= 0.05 | 0.1 | ❌ FAIL |" in text


def test_judge_keeps_a_worse_exit_code(tmp_path):
    stats = stats_with({("auth", "POST"): [(50, False)]})
    environment = _environment(tmp_path, "steps:\n  auth: {p95_ms: 100}\n", stats)
    environment.process_exit_code = 2
    judge(environment, None)
    assert environment.process_exit_code == 2


def test_table_lists_every_rule():
    stats = stats_with({("auth", "POST"): [(50, False)]})
    rules = load_rules(str(REPO / "profiles/thresholds/update-service-kpis.yaml"))
    table = text_table(evaluate(rules, Measurements(stats, None)))
    assert table.splitlines()[0].split() == ["Rule", "Limit", "Measured", "Verdict"]
    assert len(table.splitlines()) == len(rules) + 3


class ChangingFleet:
    """A fleet whose generator lagged badly once, during the ramp-up."""

    def __init__(self) -> None:
        self.lags = iter([0.1, 2.5, 0.2, 0.3])

    def snapshot(self) -> FleetSnapshot:
        return FleetSnapshot(scheduler_lag_max_s=next(self.lags), outcomes={"success": 1})


def test_maximum_scheduler_lag_is_the_worst_over_the_run():
    environment = Environment()
    environment.mendersim_fleet = ChangingFleet()
    watch = LagWatch(environment)
    for _ in range(3):
        watch.sample()
    final = watch.final()
    assert final.scheduler_lag_max_s == 2.5 and final.outcomes == {"success": 1}


def test_without_a_fleet_there_is_no_snapshot():
    assert LagWatch(Environment()).final() is None
