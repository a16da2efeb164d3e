from mendersim.harness.coordination import rollout
from mendersim.harness.coordination.rollout import (
    accepted_fleet_ids,
    finished_count,
    identity_key,
    targets_for,
)


class _Devices:
    """The device listing of a management API: pages of accepted devices."""

    def __init__(self, devices):
        self.devices = devices

    def list_devices(self, status, page, per_page):
        assert status == "accepted"
        return self.devices[(page - 1) * per_page : page * per_page]


def test_only_simulated_devices_are_targets_across_pages(monkeypatch):
    monkeypatch.setattr(rollout, "PAGE", 3)
    devices = [{"id": f"s{i}", "identity_data": {"sn": str(i)}} for i in range(7)]
    devices.insert(2, {"id": "real-device", "identity_data": {"mac": "00:11"}})
    fleet = {identity_key({"sn": str(i)}) for i in range(7)}
    assert accepted_fleet_ids(_Devices(devices), fleet) == [f"s{i}" for i in range(7)]


def test_share_of_targets_rounds_up_and_is_never_empty():
    ids = [f"d{i:02}" for i in range(10)]
    assert targets_for(ids, 0.1) == ["d00"]
    assert len(targets_for(ids, 0.25)) == 3
    assert targets_for(ids[:1], 0.01) == ["d00"]
    assert targets_for([], 0.5) == []


def test_finished_counts_every_final_state_only():
    stats = {"success": 3, "failure": 2, "already-installed": 1, "downloading": 4, "pending": 5}
    assert finished_count(stats) == 6
