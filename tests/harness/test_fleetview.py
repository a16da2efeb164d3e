import logging

from mendersim.fleet.model import DeploymentRecord, DeviceRecord, DeviceStateUpdate
from mendersim.harness import wire
from mendersim.harness.coordination.fleetview import FleetView
from mendersim.harness.reporting.webui import fleet_rows
from mendersim.harness.worker.clock import bucket_of


def _report(accepted=0, pending=0, downloading=0, success=0, failure=0, lag_s=0.001, n=100):
    return {
        "status": {"accepted": accepted, "pending": pending},
        "phases": {"downloading": downloading} if downloading else {},
        "outcomes": {"success": success, "failure": failure},
        "dl_bytes": 1000 * success,
        "dl_s": 1.0 * success,
        "lag": {bucket_of(lag_s): n},
        "lag_max": lag_s,
    }


def test_snapshot_adds_up_workers_and_keeps_the_worst_lag():
    live = ["w1", "w2"]
    view = FleetView(1.0, users=lambda: 30, workers=lambda: live)
    view.update("w1", _report(accepted=10, pending=5, downloading=2, success=3, failure=1))
    view.update("w2", _report(accepted=15, success=1, lag_s=0.4))
    snap = view.snapshot()
    assert snap.users == 30 and snap.workers == 2
    assert snap.devices_by_status == {"accepted": 25, "pending": 5}
    assert snap.deployments_by_state == {"downloading": 2}
    assert snap.outcomes == {"success": 4, "failure": 1}
    assert snap.success_rate() == 0.8
    assert 0.4 <= snap.scheduler_lag_p99_s <= 0.45
    live.remove("w2")  # a gone worker's devices no longer count; its outcomes happened
    snap = view.snapshot()
    assert snap.devices_by_status == {"accepted": 10, "pending": 5}
    assert snap.outcomes == {"success": 4, "failure": 1}


def test_lag_above_the_bound_warns(caplog):
    view = FleetView(1.0, users=lambda: 1, workers=lambda: ["w"])
    with caplog.at_level(logging.WARNING, logger="mendersim.harness.coordination.fleetview"):
        view.update("w", _report(lag_s=2.5))
    assert "scheduler lag p99" in caplog.text and "exceeds 1 s" in caplog.text
    rows = {r["name"]: r["value"] for r in fleet_rows(view.snapshot(), view)}
    assert rows["WARNING"].startswith("scheduler lag p99 2.")
    view.update("w", _report(lag_s=0.01))
    assert view.lag_warning is None
    view.update("w", _report(lag_s=3.5))  # the Fleet tab has it; the console heard it once
    assert view.lag_warning.startswith("scheduler lag p99 3.")
    assert caplog.text.count("exceeds 1 s") == 1
    view.new_swarm(1.0)
    with caplog.at_level(logging.WARNING, logger="mendersim.harness.coordination.fleetview"):
        view.update("w", _report(lag_s=2.5))
    assert caplog.text.count("exceeds 1 s") == 2


def test_fleet_tab_rows_show_rollout_progress():
    view = FleetView(1.0, users=lambda: 3, workers=lambda: ["w"])
    view.update("w", _report(accepted=3))
    view.rollout.rollout_targets, view.rollout.rollout_done = 10, 4
    rows = {r["name"]: r["value"] for r in fleet_rows(view.snapshot(), view)}
    assert rows["devices: accepted (this run)"] == "3"
    assert rows["rollout"] == "4 of 10 finished"


def test_records_and_updates_survive_the_wire():
    record = DeviceRecord(
        "automotive-000001", "automotive", "ed25519", '{"vin":"X"}', b"-----PEM-----",
        "tcu", "fw-1", '{"modem":"Q"}', "accepted", "b", {"rootfs-image.version": "1"},
    )  # fmt: skip
    assert wire.record_from_wire(wire.record_to_wire(record)) == record
    update = DeviceStateUpdate(
        "automotive-000001", "accepted", "fw-2", "b", {},
        [DeploymentRecord("d1", "fw-2", 1.0, 2.0, "success")],
    )  # fmt: skip
    assert wire.update_from_wire(wire.update_to_wire(update)) == update
    wire.apply_update(record, update)
    assert (record.artifact_name, record.partition) == ("fw-2", "b")


def test_the_hand_ins_lag_is_left_out_of_the_figures_and_the_warning(caplog):
    """The hand-in's walks over the fleet do not yield; the lag a worker reports with its final
    state is the stop's own, not saturation, while its counts are the fleet as handed in."""
    view = FleetView(1.0, users=lambda: 10, workers=lambda: ["w"])
    view.update("w", _report(accepted=5, lag_s=0.05))
    view.stopping()
    with caplog.at_level(logging.WARNING, logger="mendersim.harness.coordination.fleetview"):
        view.update("w", _report(accepted=10, lag_s=2.5))
    assert "exceeds" not in caplog.text
    snap = view.snapshot()
    assert snap.devices_by_status == {"accepted": 10, "pending": 0}
    assert snap.scheduler_lag_p99_s < 0.1
    view.new_swarm(1.0)  # the next swarm's lag counts again
    view.update("w", _report(lag_s=2.5))
    assert view.snapshot().scheduler_lag_p99_s > 2
