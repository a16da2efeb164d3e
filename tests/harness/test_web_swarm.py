"""The web UI drives the run: custom parameters posted with a swarm take effect, the Fleet tab's
"Roll out" works with the embedded server's token and with one typed for another server, and no
token reaches a page, a file of the run or a point written to the time-series server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from harness_helpers import TIME_SCALE, locust, wait_for
from recording_proxy import recording_proxy

from mendersim.mender_api.management import ManagementClient
from mendersim.server.process import free_port

pytestmark = pytest.mark.integration

MGMT_TOKEN = "mgmt-6f1d0c2e9a7b4e58"
INFLUX_TOKEN = "influx-0b7e4c1d93a2f6a1"
TENANT_TOKEN = "tenant-c3a94f0e1b2d7c65"


def test_swarm_options_take_effect_and_secrets_stay_off(small_fleet, tmp_path, victoria_metrics):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with recording_proxy(victoria_metrics) as (influx_url, written):
        pages = _web_run(small_fleet, tmp_path, base, port, log, influx_url)
    # every point the run wrote, as sent (string fields too) and as the server keeps it
    points = b"".join(written).decode("utf-8")
    assert "mendersim_fleet" in points and "mendersim_step" in points
    assert "description=" in points  # a string field: kept by the scan, dropped by the server
    requests.get(f"{victoria_metrics}/internal/force_flush", timeout=10)
    kept = requests.get(
        f"{victoria_metrics}/api/v1/export", params={"match[]": '{__name__=~"mendersim_.+"}'},
        timeout=30,
    ).text  # fmt: skip
    assert '"__name__":"mendersim_fleet_devices_count"' in kept
    _assert_no_secret(
        {**pages, "points written": points, "points kept": kept},
        tmp_path,
        (MGMT_TOKEN, INFLUX_TOKEN, TENANT_TOKEN),
    )


def _web_run(small_fleet, tmp_path, base: str, port: int, log: Path, influx_url: str) -> dict:
    run = locust(
        "--web-host", "127.0.0.1", "--web-port", str(port),
        "--mendersim-db", str(small_fleet), "--mendersim-scenario", "steady",
        "--html", str(tmp_path / "report.html"), "--csv", str(tmp_path / "stats"),
        "--influx-url", influx_url, "--influx-interval", "1",
        "--description", "web swarm secret scan",
        log=log,
        env={
            "MENDERSIM_MGMT_TOKEN": MGMT_TOKEN,
            "MENDERSIM_INFLUX_TOKEN": INFLUX_TOKEN,
            "MENDERSIM_TENANT_TOKEN": TENANT_TOKEN,
        },
    )  # fmt: skip
    pages: dict[str, str] = {}
    try:
        page = wait_for(lambda: requests.get(base, timeout=5).text, bool, 30)
        pages["/ (before the swarm)"] = page
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
        fleet = wait_for(
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
        wait_for(
            lambda: requests.get(f"{base}/mendersim/fleet", timeout=5).json(),
            lambda f: f["rollout_targets"] == 5 and f["rollout_finished_s"] is not None,
            60,
        )
        refused = requests.post(f"{base}/mendersim/rollout", data={"share": "2"}, timeout=10)
        assert refused.status_code == 400 and "share" in refused.json()["message"]
        time.sleep(2)  # one more write of the fleet points
        pages |= _served(base)
        requests.get(f"{base}/stop", timeout=10)
        time.sleep(2)
        pages["/stats/report"] = requests.get(f"{base}/stats/report", timeout=10).text
        pages["/mendersim/report (before the end)"] = requests.get(
            f"{base}/mendersim/report", timeout=10
        ).text
    finally:
        run.send_signal(signal.SIGTERM)  # how a web-UI run is ended: store and report written
        code = run.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    return pages


PAGES = (
    "/", "/mendersim/fleet", "/stats/requests", "/mendersim/rollout", "/stats/requests/csv",
    "/stats/failures/csv", "/exceptions", "/logs",
)  # fmt: skip


def _served(base: str) -> dict[str, str]:
    """The web UI's pages and JSON, as anyone reaching its port can read them."""
    return {path: requests.get(f"{base}{path}", timeout=10).text for path in PAGES}


def _assert_no_secret(texts: dict[str, str], folder: Path, tokens: tuple[str, ...]) -> None:
    """Every page served and every file in `folder` (run folder, report, logs, store aside),
    searched for the token values."""
    files = [p for p in folder.rglob("*") if p.is_file() and ".db" not in p.name]
    names = {p.name for p in files}
    assert {"report.html", "run.json", "timeline.jsonl", "mendersim-report.html"} <= names, names
    assert any(name.endswith(".log") for name in names), names
    texts = {**texts, **{str(p): p.read_bytes().decode("utf-8", "replace") for p in files}}
    for where, text in texts.items():
        for token in tokens:
            assert token not in text, f"{token} in {where}"


SERVE_TOKEN = "serve-2b9e71c4d05a8f36"
WRONG_TOKEN = "wrong-5d0c8e14a7b2f963"


def _serve(port: int, token_file: Path, log: Path) -> subprocess.Popen:
    """`mendersim serve` with its own management token, from a file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENDERSIM_")}
    command = [sys.executable, "-m", "mendersim.cli", "serve", "--port", str(port)]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*command, "--mgmt-token-file", str(token_file)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    wait_for(
        lambda: requests.get(f"http://127.0.0.1:{port}/_mendersim/health", timeout=2).ok, bool, 30
    )
    return server


def test_roll_out_with_a_typed_token_on_a_server_of_its_own(small_fleet, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    token_file = secret / "mgmt-token"
    token_file.write_text(SERVE_TOKEN + "\n", encoding="utf-8")
    folder = tmp_path / "run"
    folder.mkdir()
    server_port, web_port = free_port(), free_port()
    server_url, base = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{web_port}"
    management = ManagementClient(server_url, SERVE_TOKEN)
    server = _serve(server_port, token_file, folder / "server.log")
    log = folder / "run.log"
    run = locust(
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--host", server_url,
        "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
        "--html", str(folder / "report.html"), log=log,
    )  # fmt: skip
    try:
        wait_for(lambda: requests.get(base, timeout=5).text, bool, 30)
        form = {"user_count": "10", "spawn_rate": "10", "host": ""}
        assert requests.post(f"{base}/swarm", data=form, timeout=10).json()["success"]
        wait_for(
            lambda: requests.get(f"{base}/mendersim/fleet", timeout=5).json(),
            lambda f: f["devices_by_status"].get("accepted") == 10,
            30,
        )
        rollout = f"{base}/mendersim/rollout"
        # a wrong token: one clear line, at once, nothing deployed
        wrong = requests.post(rollout, data={"share": "0.5", "token": WRONG_TOKEN}, timeout=30)
        assert wrong.status_code == 400, wrong.text
        message = wrong.json()["message"]
        assert message.startswith(f"roll out: management token: refused by {server_url} (HTTP 401")
        assert WRONG_TOKEN not in message and "Traceback" not in wrong.text
        # no token: the server is not the embedded one, so the run's option would be needed
        missing = requests.post(rollout, json={"share": 0.5}, timeout=30)
        assert missing.status_code == 400 and "needs a management token" in missing.text
        assert management.list_deployments() == []
        # the typed token of this server, as JSON
        typed = {"share": 0.5, "artifact_size": 2048, "token": SERVE_TOKEN}
        answer = requests.post(rollout, json=typed, timeout=30).json()
        assert answer["success"], answer
        wait_for(
            lambda: requests.get(f"{base}/mendersim/fleet", timeout=5).json(),
            lambda f: f["rollout_targets"] == 5 and f["rollout_finished_s"] is not None,
            60,
        )
        (deployment,) = management.list_deployments()
        assert sum(management.deployment_statistics(deployment["id"]).values()) == 5
        pages = _served(base)
        requests.get(f"{base}/stop", timeout=10)
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=60)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    _assert_no_secret(pages, folder, (SERVE_TOKEN, WRONG_TOKEN))
