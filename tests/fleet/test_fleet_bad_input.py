"""Bad input to `seed` and `fleet`: a damaged store, a closed pipe, a profile that cannot fail
the way it says, two seeds at once. Each is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from fleet_helpers import REPO, variant

from mendersim import cli

pytestmark = pytest.mark.integration

CARS = variant("automotive", "cars")
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def mendersim(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mendersim.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
    )


def assert_one_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


@pytest.fixture
def store(write_fleet, tmp_path):
    fleet = write_fleet([("cars", 60)], profiles={"cars": CARS})
    db = tmp_path / "fleet.db"
    assert cli.main(["seed", str(fleet), "--db", str(db), "--quiet"]) == 0
    return fleet, db


@pytest.mark.parametrize("page", [2, 4, 6])
def test_damaged_store_is_one_line_for_fleet_and_seed(store, page):
    fleet, db = store
    with open(db, "r+b") as f:  # overwrite two pages in the middle with noise
        f.seek(4096 * page)
        f.write(os.urandom(8192))
    assert_one_line(mendersim("fleet", str(db)), str(db), "seed store")
    assert_one_line(mendersim("seed", str(fleet), "--db", str(db), "--quiet"), str(db))


def test_fleet_into_a_closed_pipe_is_one_line(store):
    _, db = store
    result = subprocess.run(
        # `true` exits long before the interpreter has started: every write meets a closed pipe
        f"{sys.executable} -m mendersim.cli fleet {db} --json | true; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert_one_line(result, "standard output closed")


def test_all_zero_failure_weights_are_refused(write_fleet, tmp_path):
    profile = variant(
        "automotive",
        "never-fails",
        update={"success_rate": 0.5, "failure_modes": dict.fromkeys(_modes(), 0)},
    )
    fleet = write_fleet([("never-fails", 3)], profiles={"never-fails": profile})
    result = mendersim("seed", str(fleet), "--db", str(tmp_path / "f.db"), "--quiet")
    assert_one_line(result, "update.failure_modes", "every weight is 0")
    assert not (tmp_path / "f.db").exists()


def _modes() -> tuple[str, ...]:
    from mendersim.fleet.schema import FAILURE_MODES

    return FAILURE_MODES


def test_second_concurrent_seed_stops_with_one_line(write_fleet, tmp_path):
    slow = variant("automotive", "slow", key_type="rsa3072")
    fleet = write_fleet([("slow", 60)], profiles={"slow": slow})
    db = tmp_path / "f.db"
    command = [sys.executable, "-m", "mendersim.cli", "seed", str(fleet), "--db", str(db)]
    first = subprocess.Popen(
        [*command, "--quiet", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 60
        while not db.exists():  # created under the lock
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = mendersim("seed", str(fleet), "--db", str(db), "--quiet")
        assert_one_line(second, str(db), "another `mendersim seed` is writing this store")
        assert first.wait(120) == 0, first.communicate()
    finally:
        first.kill()
    result = mendersim("fleet", str(db), "--json")
    assert '"devices": 60' in result.stdout


def test_damaged_store_in_a_locust_run_is_one_line(store):
    _, db = store
    with open(db, "r+b") as f:
        f.seek(4096 * 4)
        f.write(os.urandom(8192))
    locustfile = REPO / "locustfiles" / "fleet.py"
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "1",
         "-t", "2s", "--mendersim-db", str(db)],
        capture_output=True, text=True, timeout=120, env=ENV, cwd=db.parent,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "mendersim: error:" in line]
    assert len(errors) == 1 and f"{db}: damaged seed store" in errors[0]
