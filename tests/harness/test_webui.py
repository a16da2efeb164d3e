"""The Fleet tab and its JSON, live from a running web UI."""

from __future__ import annotations

import time

import pytest
import requests
from harness_helpers import TIME_SCALE, locust

from mendersim.server.process import free_port

pytestmark = pytest.mark.integration


def test_fleet_tab_is_live_in_the_web_ui(small_fleet, tmp_path):
    port = free_port()
    run = locust(
        "--autostart", "--autoquit", "1", "-u", "40", "-r", "40", "-t", "15s",
        "--web-host", "127.0.0.1", "--web-port", str(port),
        "--mendersim-db", str(small_fleet), "--mendersim-time-scale", TIME_SCALE,
        log=tmp_path / "run.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        fleet, rows = {}, {}
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                fleet = requests.get(f"{base}/mendersim/fleet", timeout=5).json()
                stats = requests.get(f"{base}/stats/requests", timeout=5).json()
            except requests.RequestException:
                continue
            (tab,) = stats["extended_stats"]
            rows = {row["name"]: row["value"] for row in tab["data"]}
            if fleet["devices_by_status"].get("accepted") == 40:
                break
        assert fleet["users"] == 40
        assert fleet["devices_by_status"] == {"accepted": 40}
        assert tab["key"] == "fleet"
        assert rows["devices: accepted (this run)"] == "40"
        assert "scheduler lag p99 (worst worker)" in rows
        page = requests.get(base, timeout=5).text
        assert '"extended_tabs"' in page or "extended_tabs" in page
        assert "--mendersim-time-scale" in page or "mendersim_time_scale" in page
    finally:
        assert run.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()[-3000:]
