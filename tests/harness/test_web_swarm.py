"""The web UI drives the run: custom parameters posted with a swarm take effect, the Fleet tab's
"Roll out" works with the embedded server's token, and no token reaches a page or a file."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests
from harness_helpers import TIME_SCALE, locust

from mendersim.server.process import free_port

pytestmark = pytest.mark.integration

MGMT_TOKEN = "mgmt-6f1d0c2e9a7b4e58"
INFLUX_TOKEN = "influx-0b7e4c1d93a2f6a1"
TENANT_TOKEN = "tenant-c3a94f0e1b2d7c65"


def _wait_for(fetch, done, seconds: float):
    deadline, value = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            value = fetch()
        except requests.RequestException:
            value = None
        if value is not None and done(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"not reached in {seconds} s: {value}")


def test_swarm_options_take_effect_and_secrets_stay_off(small_fleet, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    run = locust(
        "--web-host", "127.0.0.1", "--web-port", str(port),
        "--mendersim-db", str(small_fleet), "--mendersim-scenario", "steady",
        "--html", str(tmp_path / "report.html"), "--csv", str(tmp_path / "stats"),
        log=log,
        env={
            "MENDERSIM_MGMT_TOKEN": MGMT_TOKEN,
            "MENDERSIM_INFLUX_TOKEN": INFLUX_TOKEN,
            "MENDERSIM_TENANT_TOKEN": TENANT_TOKEN,
        },
    )  # fmt: skip
    pages: list[str] = []
    try:
        page = _wait_for(lambda: requests.get(base, timeout=5).text, bool, 30)
        pages.append(page)
        assert "mendersim_scenario" in page  # editable
        assert "mendersim_db" not in page  # fixed for the process: not offered
        form = {
            "user_count": "20", "spawn_rate": "20", "host": "",
            "mendersim_scenario": "rollout", "mendersim_rollout_share": "0.5",
            "mendersim_rollout_delay": "20", "mendersim_time_scale": TIME_SCALE,
            # masked fields come back empty: the tokens given at start-up stay
            "mendersim_mgmt_token": "", "influx_token": "", "mendersim_tenant_token": "",
        }  # fmt: skip
        answer = requests.post(f"{base}/swarm", data=form, timeout=10).json()
        assert answer["success"], answer
        fleet = _wait_for(
            lambda: requests.get(f"{base}/mendersim/fleet", timeout=5).json(),
            lambda f: f["rollout_finished_s"] is not None,
            60,
        )
        # the scenario came from the form; the share is of the 20 devices accepted in this run
        assert fleet["rollout_targets"] == 10
        assert fleet["devices_by_status"] == {"accepted": 20}
        # the Fleet tab's action, with the embedded server's own token
        answer = requests.post(
            f"{base}/mendersim/rollout", data={"share": "0.25", "artifact_size": "2048"}, timeout=10
        ).json()
        assert answer["success"], answer
        _wait_for(
            lambda: requests.get(f"{base}/mendersim/fleet", timeout=5).json(),
            lambda f: f["rollout_targets"] == 5 and f["rollout_finished_s"] is not None,
            60,
        )
        refused = requests.post(f"{base}/mendersim/rollout", data={"share": "2"}, timeout=10)
        assert refused.status_code == 400 and "share" in refused.json()["message"]
        for path in ("/", "/mendersim/fleet", "/stats/requests", "/mendersim/rollout"):
            pages.append(requests.get(f"{base}{path}", timeout=5).text)
        requests.get(f"{base}/stop", timeout=10)
        time.sleep(2)
        pages.append(requests.get(f"{base}/stats/report", timeout=10).text)
    finally:
        run.send_signal(signal.SIGTERM)  # how a web-UI run is ended: store and report written
        code = run.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    _assert_no_secret(pages, tmp_path)


def _assert_no_secret(pages: list[str], folder: Path) -> None:
    """Every page served and every file the run wrote, searched for the token values."""
    texts = {f"page {i}": page for i, page in enumerate(pages)}
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".db", ".db-wal")]
    assert any(p.name == "report.html" for p in files)
    texts |= {str(p): p.read_bytes().decode("utf-8", "replace") for p in files}
    for where, text in texts.items():
        for token in (MGMT_TOKEN, INFLUX_TOKEN, TENANT_TOKEN):
            assert token not in text, f"{token} in {where}"
