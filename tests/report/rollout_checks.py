"""Checks of a rollout run's report against the run's CSVs and the server, shared by the
standalone and the distributed report tests."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from report_helpers import Tables, csv_rows, parse, rows_by

REPO = Path(__file__).resolve().parents[2]


def rollout_args(server, db: Path, folder: Path) -> list[str]:
    """A rollout to half of the fleet against `server`, recorded in `folder`, judged by the
    smoke thresholds."""
    return [
        "--host", server.url, "--mendersim-mgmt-token", server.mgmt_token,
        "--mendersim-db", str(db), "--mendersim-scenario", "rollout",
        "--mendersim-rollout-share", "0.5", "--mendersim-rollout-artifact-size", "16384",
        "--csv", str(folder / "run"), "--mendersim-run-dir", str(folder),
        "--thresholds", str(REPO / "profiles/thresholds/smoke.yaml"),
        "--thresholds-summary", str(folder / "summary.md"),
    ]  # fmt: skip


def server_side(server) -> tuple[dict, dict, dict[str, str]]:
    """The deployment's statistics, the server's counters, the logs of the failed devices."""
    mgmt = server.management()
    (deployment,) = mgmt.list_deployments()
    failed = mgmt.deployment_devices(deployment["id"], "failure")
    logs = {d["id"]: mgmt.device_log(deployment["id"], d["id"]) for d in failed if d["log"]}
    return mgmt.deployment_statistics(deployment["id"]), mgmt.mendersim_status(), logs


def check_report(folder: Path, fleet: int, statistics: dict, status: dict) -> Tables:
    """Every section against the run's CSVs and what the server counted; the parsed page."""
    report = folder / "mendersim-report.html"
    page = parse(report)
    assert page.sections == ["run", "fleet", "rollout", "steps"]
    assert not page.external  # nothing to fetch: plotly.js is inline
    # Per HTTP step: counts and failures as in Locust's CSV, and no device rows there.
    locust_rows = csv_rows(folder / "run_stats.csv")
    steps = rows_by(page.tables["step-figures"], 0, 1)
    http = {k: r for k, r in locust_rows.items() if r["Name"] != "Aggregated"}
    assert set(steps) == set(http)
    for key, row in http.items():
        # Locust writes its CSV a moment before the run's last sample: never more than it.
        assert int(row["Request Count"]) <= int(steps[key][2]), key
        assert int(row["Failure Count"]) <= int(steps[key][3]), key
    # What the server received, exchange for exchange.
    received = status["requests"]
    for (method, name), route in (
        (("POST", "deployments/next"), "POST /api/devices/v2/deployments/device/deployments/next"),
        (("POST", "auth"), "POST /api/devices/v1/authentication/auth_requests"),
    ):
        assert int(steps[(method, name)][2]) == sum(received[route].values()), name
    next_route = "POST /api/devices/v2/deployments/device/deployments/next"
    assert int(steps[("POST", "deployments/next")][3]) == received[next_route]["503"]
    assert int(http[("POST", "deployments/next")]["Failure Count"]) > 0  # the injected 503s
    kinds = dict(page.tables["failure-kinds"][1:])
    assert int(kinds["HTTP 503"]) == sum(int(row[3]) for row in steps.values())
    # Device-level figures as in device_stats.csv.
    device = rows_by(page.tables["device-figures"], 0, 1)
    measured = csv_rows(folder / "device_stats.csv")
    assert set(device) == set(measured)
    for key, row in measured.items():
        assert device[key][2] == row["Request Count"], key
    assert device[("DEVICE", "time to accepted")][2] == str(fleet)
    # Outcomes and the rollout as the server saw them.
    outcomes = dict(page.tables["outcomes"][1:])
    assert int(outcomes["success"]) == statistics["success"]
    assert int(outcomes["failure"]) == statistics["failure"] > 0
    reasons = page.tables["failure-reasons"][1:]
    assert sum(int(n) for _, n in reasons) == statistics["failure"]
    marks = dict(page.tables["rollout-marks"][1:])
    assert all(re.fullmatch(r"[\d.e+]+", marks[m]) for m in ("50 %", "90 %", "100 %"))
    assert float(marks["50 %"]) <= float(marks["90 %"]) <= float(marks["100 %"])
    final = dict(page.tables["fleet-final"][1:])
    assert int(final["accepted"]) == status["devices"]["accepted"] == fleet
    # The verdicts as the job summary has them, and the summary points to the report.
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert f"Run report: `{report}` ({fleet} devices accepted" in summary
    for rule, _limit, _measured, verdict in page.tables["thresholds"][1:]:
        assert re.search(rf"\| {re.escape(rule)} \|.*{verdict.split()[0]}", summary), rule
    facts = dict(page.tables["run-facts"][1:])
    assert facts["devices in the fleet"] == str(fleet)
    assert "mgmt_token" not in report.read_text(encoding="utf-8").split("<script>")[0]
    for chart in ("chart-devices", "chart-rollout", "chart-http-latency", "chart-device-durations"):
        assert chart in page.charts
    return page


def check_failure_logs(folder: Path, statistics: dict, logs: dict[str, str]) -> None:
    """The grouped error lines are those of the logs the server holds for the failed devices."""
    page = parse(folder / "mendersim-report.html")
    assert 0 < len(logs) <= statistics["failure"]
    read = page.data["failure-logs"]
    assert int(read["failed"]) == statistics["failure"]
    assert int(read["with-log"]) == int(read["read"]) == len(logs)
    devices: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for text in logs.values():
        fields = [line.split(" ", 2) for line in text.splitlines()]  # time, level, message
        errors = [message for _, level, message in fields if level == "error"]
        lines.update(errors)
        devices.update(set(errors))
    table = {row[0]: (int(row[1]), int(row[2])) for row in page.tables["failure-log-lines"][1:]}
    assert table == {m: (devices[m], lines[m]) for m in devices}
    # the lines the failure modes write (device/failures.py, and the artifact reader for a
    # corrupted download) are among them, whichever modes the deployment's devices drew
    written = (
        "Update Module output", "Kernel panic", "Unexpected error", "ArtifactVerifyReboot",
        "The checksum of ",
    )  # fmt: skip
    assert any(m.startswith(written) for m in table), table
