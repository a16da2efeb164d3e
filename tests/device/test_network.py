"""Network profiles and their effect on a device: latency, upload time, loss, outages, NB-IoT."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from device_fakes import Offer, VirtualClock, artifact, profile, rig

from mendersim.device.network import load_network_profile
from mendersim.device.shaping import ShapedTransport
from mendersim.device.transport import IN_FLIGHT, Response, TransportError
from mendersim.errors import ConfigError
from mendersim.paths import profiles_root

SHIPPED = [
    "none",
    "lte",
    "lte-m",
    "nb-iot",
    "3g",
    "edge",
    "gprs",
    "geo-satellite",
    "leo-satellite",
    "intermittent",
]


class Echo:
    """An inner transport answering at once."""

    def __init__(self) -> None:
        self.calls = 0

    def request(self, step, method, url, *, headers=None, body=None):
        self.calls += 1
        return Response(200, b"x" * 1000)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name):
    loaded = load_network_profile(name)
    assert loaded.name == name


def test_every_shipped_file_is_tested_and_cites_its_row():
    assert sorted(p.stem for p in (profiles_root() / "network").glob("*.yaml")) == sorted(SHIPPED)
    for path in (profiles_root() / "network").glob("*.yaml"):
        if path.stem != "none":
            text = path.read_text()
            assert "reference row" in text and "figures" in text.lower(), path


def test_invalid_profile_is_a_config_error_naming_file_and_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndown_kbps: -1\nup_kbps: 10\nrtt_ms: 5\nloss: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: down_kbps"):
        load_network_profile(str(bad))
    cut = tmp_path / "cut.yaml"
    cut.write_text(
        "name: cut\ndown_kbps: 1\nup_kbps: 1\nrtt_ms: 5\nloss: 0\n"
        "outage: {every_s: 10, duration_s: 10}\n"
    )
    with pytest.raises(ConfigError, match="duration_s must be shorter"):
        load_network_profile(str(cut))


def test_latency_and_upload_time_per_exchange():
    clock = VirtualClock()
    link = ShapedTransport(Echo(), load_network_profile("3g"), clock, device_id="d", seed=0)
    link.request("inventory", "PUT", "/x", body=b"y" * 9600)
    # two set-up round trips of 300 ms, 9600 bytes up at 768 kbit/s, 1000 bytes down at 1.6
    expected = 2 * 0.3 + 9600 * 8 / 768_000 + 1000 * 8 / 1_600_000
    assert clock.t == pytest.approx(expected)


def test_the_links_set_up_and_download_count_as_an_exchange_on_the_wire():
    """The end of a run waits for exchanges on the wire; a device stopped while its link sets
    up still sends its request, so the set-up counts, as does the answer's download."""

    class Counting(VirtualClock):
        def __init__(self) -> None:
            super().__init__()
            self.in_flight_while_sleeping: list[int] = []

        def sleep(self, seconds: float) -> None:
            self.in_flight_while_sleeping.append(IN_FLIGHT.count)
            super().sleep(seconds)

    class Inner(Echo):
        def request(self, *args, **kwargs):
            seen.append(IN_FLIGHT.count)
            return super().request(*args, **kwargs)

    seen: list[int] = []
    before = IN_FLIGHT.count
    clock = Counting()
    link = ShapedTransport(Inner(), load_network_profile("3g"), clock, device_id="d", seed=0)
    link.request("inventory", "PUT", "/x", body=b"y" * 9600)
    # set-up, then download; the inner transport counts its own part
    assert clock.in_flight_while_sleeping == [before + 1, before + 1]
    assert seen == [before]
    assert IN_FLIGHT.count == before


def test_device_on_lte_m_sees_latency_on_every_request():
    device, server, clock, _ = rig(profile(network={"profile": "lte-m"}))
    clock.stop_at(1, device)
    device.run()
    times = [e.at for e in server.exchanges]
    auth = server.exchanges[0]
    # 2 × 75 ms of set-up, then the body's upload time at 1 Mbit/s, before the server sees it
    assert auth.at == pytest.approx(0.15 + len(auth.body) * 8 / 1_000_000)
    assert all(b > a for a, b in itertools.pairwise(times))


def test_outages_make_requests_fail_offline_at_deterministic_times():
    clock = VirtualClock()
    profile_ = load_network_profile("intermittent")
    link = ShapedTransport(Echo(), profile_, clock, device_id="dev-1", seed=3)
    offline = []
    for second in range(600):
        clock.t = float(second)
        try:
            link.request("deployments/next", "GET", "/next")
        except TransportError as exc:
            assert exc.kind == "offline"
            offline.append(second)
    assert 55 <= len(offline) <= 62  # 30 s of every 300 s
    again = ShapedTransport(Echo(), profile_, VirtualClock(), device_id="dev-1", seed=3)
    again.clock.t = float(offline[0])
    with pytest.raises(TransportError):
        again.request("auth", "POST", "/auth")
    other = ShapedTransport(Echo(), profile_, VirtualClock(), device_id="dev-2", seed=3)
    other_offline = []
    for second in range(600):
        other.clock.t = float(second)
        if other.offline():
            other_offline.append(second)
    assert other_offline != offline  # devices do not all drop at once


def test_intermittent_device_backs_off_through_outages():
    device, server, clock, _ = rig(profile(network={"profile": "intermittent"}), start_spread=0)
    clock.stop_at(3 * 3600, device)
    device.run()
    polls = server.of("deployments/next")
    assert polls and device.status == "accepted"


def test_loss_adds_retransmission_delay_and_occasional_timeouts():
    clock = VirtualClock()
    link = ShapedTransport(Echo(), load_network_profile("edge"), clock, device_id="d", seed=1)
    base = 2 * 0.84 + 1000 * 8 / 240_000
    delays, timeouts = [], 0
    for _ in range(3000):
        before = clock.t
        try:
            link.request("deployments/next", "GET", "/next")
            delays.append(clock.t - before)
        except TransportError as exc:
            assert exc.kind == "timeout"
            timeouts += 1
    slowed = sum(d > base + 0.5 for d in delays) / len(delays)
    assert 0.01 < slowed < 0.06  # about 3 segments at 1 % loss
    assert timeouts <= 3  # 1 % cubed: rare


def test_nb_iot_refuses_rootfs_sized_downloads():
    device, server, clock, _ = rig(profile(network={"profile": "nb-iot"}), time_scale=0.01)
    server.offer = Offer("dep-1", "tcu-fw-5.0.0", artifact(size=3_000_000))
    clock.stop_at(20_000, device)
    device.run()
    assert server.statuses() == ["downloading", "failure"]
    text = [m["message"] for m in server.of("deployment log")[0].json()["messages"]]
    assert any("Operation timed out" in line for line in text)
    assert any("Giving up on resuming the download" in line for line in text)
    assert device.state_update().history[0].failure_reason == "download_failed"
