"""The composite action's `run:` steps, executed in order with bash as a runner would: inputs
through each step's `env:` mapping, GITHUB_OUTPUT / GITHUB_PATH / GITHUB_STEP_SUMMARY files,
against the embedded server. Steps that use other actions (setup-python, cache,
upload-artifact) are left to GitHub; actionlint and the action schema check their syntax."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
SECRET = "mgmt-token-that-must-not-leak"
USED_ACTIONS = {"actions/setup-python@v5", "actions/cache@v4", "actions/upload-artifact@v4"}


class Runner:
    """One job's worth of a GitHub runner's files and expression contexts."""

    def __init__(self, tmp: Path, temp: Path, inputs: dict[str, str]) -> None:
        self.tmp = tmp
        self.summary = tmp / "step_summary.md"
        self.summary.touch()
        self.path_file = tmp / "path"
        self.path_file.touch()
        self.inputs = {k: v.get("default", "") for k, v in ACTION["inputs"].items()} | inputs
        self.context = {"github.action_path": str(REPO), "runner.temp": str(temp)}
        self.outputs: dict[str, dict[str, str]] = {}

    def evaluate(self, text: str) -> str:
        def value(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("inputs."):
                return self.inputs[name.removeprefix("inputs.")]
            if name.startswith("steps."):
                step, _, key = name.removeprefix("steps.").partition(".outputs.")
                return self.outputs[step][key]
            return self.context[name]

        return EXPRESSION.sub(value, str(text))

    def run_step(self, index: int, step: dict) -> int:
        output = self.tmp / f"output_{index}"
        output.touch()
        extra_path = [p for p in self.path_file.read_text().splitlines() if p]
        env = {
            **os.environ,
            **{k: self.evaluate(v) for k, v in step.get("env", {}).items()},
            "GITHUB_OUTPUT": str(output),
            "GITHUB_PATH": str(self.path_file),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "PATH": os.pathsep.join([*extra_path, str(Path(sys.executable).parent),
                                     os.environ["PATH"]]),
        }  # fmt: skip
        script = self.tmp / f"step_{index}.sh"
        script.write_text(step["run"])
        # GitHub's `shell: bash` is `bash --noprofile --norc -eo pipefail {0}`.
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=env,
            cwd=self.tmp,
            timeout=300,
        )
        if step.get("id"):
            self.outputs[step["id"]] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
            )
        return result.returncode

    def run_action(self) -> int:
        for index, step in enumerate(ACTION["runs"]["steps"]):
            if "uses" in step:
                assert step["uses"] in USED_ACTIONS
                continue
            code = self.run_step(index, step)
            if code != 0:
                return code
        return 0

    def action_outputs(self) -> dict[str, str]:
        return {k: self.evaluate(v["value"]) for k, v in ACTION["outputs"].items()}


def test_run_steps_take_inputs_from_the_environment_only() -> None:
    """No `${{ }}` inside scripts: inputs cannot inject shell code, secrets stay off argv."""
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step.get("id")
            assert step["shell"] == "bash"


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUNNER_TEMP shared by both runs: the second finds mendersim installed and the store
    seeded, as a job with a cache hit does."""
    return tmp_path_factory.mktemp("runner_temp")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("rules", "code", "verdict", "mark"),
    [
        ({"run": {"failure_ratio": 0.5}}, 0, "passed", "✅"),
        ({"steps": {"deployments/next": {"min_rps": 1_000_000}}}, 1, "failed", "❌"),
    ],
    ids=["passing", "failing"],
)
def test_action_runs_judges_and_reports(
    tmp_path: Path, runner_temp: Path, rules: dict, code: int, verdict: str, mark: str
) -> None:
    fleet = tmp_path / "fleets" / "tiny.yaml"
    fleet.parent.mkdir()
    fleet.write_text(
        yaml.safe_dump({"server_url": "http://127.0.0.1:1", "seed": 3,
                        "groups": [{"profile": "automotive", "count": 3}]})
    )  # fmt: skip
    thresholds = tmp_path / "rules.yaml"
    thresholds.write_text(yaml.safe_dump(rules))
    runner = Runner(
        tmp_path,
        runner_temp,
        {
            "fleet": str(fleet),
            "users": "3",
            "spawn-rate": "3",
            "run-time": "4s",
            "processes": "1",
            "time-scale": "0.0005",
            "thresholds": str(thresholds),
            "mgmt-token": SECRET,
            "test-env": "ci-test",
            "test-version": "4.1.0",
            "output-dir": str(tmp_path / "report"),
        },
    )
    assert runner.run_action() == code
    outputs = runner.action_outputs()
    assert outputs["verdict"] == verdict
    report = Path(outputs["report"])
    assert report.stat().st_size > 0
    for name in ("junit.xml", "stats_stats.csv", "locust.log", "simulator.log", "summary.md"):
        assert (report.parent / name).exists(), name
    summary = runner.summary.read_text()
    assert "mendersim thresholds" in summary and f"| {mark} " in summary
    assert f"| {({'✅': '❌', '❌': '✅'})[mark]} " not in summary
    assert "environment: `ci-test` · version: `4.1.0`" in summary  # run metadata, grouped by
    assert runner.outputs["store"]["key"].startswith("mendersim-store-")
    assert Path(runner.outputs["store"]["db"]).exists()
    for written in [runner.summary, *report.parent.iterdir()]:
        assert SECRET not in written.read_text(errors="replace"), written
