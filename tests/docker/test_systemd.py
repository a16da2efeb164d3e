"""The systemd units: `systemd-analyze verify` accepts them without a warning, and the soak
unit's ExecStart runs as the service would, then stops on its KillSignal within TimeoutStopSec
having written the fleet's state to the store."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from local_fleet import COMMANDS, REPO, log_tail, start, stop

UNITS = REPO / "docker" / "systemd"
VENV = Path(sys.executable).parent.parent
STATE = "/var/lib/mendersim"
ETC = "/etc/mendersim"


def localised(unit: Path, tmp: Path) -> str:
    """The unit with the install paths (/opt/mendersim) pointing at this checkout's venv."""
    text = unit.read_text().replace("/opt/mendersim/.venv", str(VENV))
    return text.replace("/opt/mendersim", str(REPO)).replace(ETC, str(tmp / "etc"))


def service_section(unit: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(unit.read_text().replace("\\\n", " "))
    return parser["Service"]


@pytest.mark.parametrize("unit", sorted(UNITS.glob("*.service")), ids=lambda p: p.name)
def test_systemd_analyze_verifies_the_unit(unit: Path, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    for name in ("server.env", "soak.env"):
        (tmp_path / "etc" / name).write_text("")
    copy = tmp_path / unit.name
    copy.write_text(localised(unit, tmp_path))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    service = service_section(unit)
    assert service["User"] == "mendersim" and service["Restart"] == "on-failure"
    assert service["StateDirectory"].startswith("mendersim")
    assert service["KillSignal"] == "SIGTERM" and service["NoNewPrivileges"] == "yes"


@pytest.mark.integration
def test_soak_unit_runs_and_sigterm_writes_the_store(tmp_path: Path) -> None:
    service = service_section(UNITS / "mendersim-soak.service")
    state = tmp_path / "state"
    state.mkdir()
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        yaml.safe_dump(
            {"server_url": "http://127.0.0.1:1", "seed": 5,
             "groups": [{"profile": "automotive", "count": 4}]}
        )
    )  # fmt: skip
    argv = shlex.split(service["ExecStart"])
    argv = [
        a.replace(f"{STATE}/soak", str(state)).replace(f"{ETC}/fleet.yaml", str(fleet))
        for a in argv
    ]
    argv = [
        *COMMANDS[Path(argv[0]).name],
        *(a.replace("/opt/mendersim", str(REPO)) for a in argv[1:]),
    ]
    # What an operator puts in soak.env; no LOCUST_HOST, so the embedded server is the target.
    unit_env = dict(pair.split("=", 1) for pair in shlex.split(service["Environment"]))
    env = {**os.environ, "LOCUST_USERS": "4", "LOCUST_SPAWN_RATE": "4",
           "MENDERSIM_TIME_SCALE": "0.0005"}  # fmt: skip
    env |= {k: v.replace("/opt/mendersim", str(REPO)) for k, v in unit_env.items()}
    log = state / "console.log"
    soak = start(argv, env, log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _statuses(state) != {"accepted"}:
            assert soak.poll() is None, log_tail(log)
            time.sleep(0.5)
        soak.send_signal(getattr(signal, service["KillSignal"]))
        code = soak.wait(timeout=float(service["TimeoutStopSec"]))
    finally:
        stop(soak)
    assert code == 0, log_tail(log)
    assert _statuses(state) == {"accepted"}
    assert (state / "report.html").stat().st_size > 0  # written on the way out, after SIGTERM


def _statuses(state: Path) -> set[str]:
    db = state / "fleet.db"
    if not db.exists():
        return set()
    with sqlite3.connect(db) as connection:
        return {row[0] for row in connection.execute("SELECT status FROM acceptance")}
