"""One deployment, lived as the C++ client's update state machine: one small function per state.

downloading → download → installing → install → rebooting → reboot → (re-authenticate) →
installing → commit → success. Install, reboot and commit errors roll back (with a rollback
reboot once the new partition has booted) and end in failure with a log upload; download errors
end in failure at once. A 409 on a status report means the deployment was aborted: the device
cleans up and reports nothing more. With a control map (Go client 3.5, see controlmap.py) the
device consults it before installing, rebooting and committing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mendersim import CLIENT_VERSION
from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.device import decide, failures, steps
from mendersim.device.backoff import backoff_interval
from mendersim.device.controlmap import PAUSE_STATUS, ControlMap, ControlMapError
from mendersim.device.devlog import DeploymentLog
from mendersim.device.download import Download, DownloadError
from mendersim.device.transport import Response, TransportError
from mendersim.fleet.model import DeploymentRecord

if TYPE_CHECKING:
    from mendersim.device.engine import Device

log = logging.getLogger(__name__)

State = Callable[["Deployment"], "State | None"]

# The phases a device goes through during a deployment, in order of first appearance.
DEPLOYMENT_PHASES = (
    "downloading",
    "paused",
    "installing",
    "rebooting",
    "committing",
    "rolling-back",
    "reporting",
)

_GO_ON, _ABORTED, _GAVE_UP = "go-on", "aborted", "gave-up"
CONTROL_MAP_FAIL = "control_map_fail"  # the map's action (or on_map_expire) was fail
CONTROL_MAP_UNREACHABLE = "control_map_unreachable"  # its refresh failed past the retry schedule


class Deployment:
    """The short-lived state of one deployment; dropped when it ends."""

    __slots__ = (
        "artifact_name",
        "control_map",
        "device",
        "devlog",
        "failure",
        "id",
        "info_provides",
        "paused",
        "reason",
        "rebooted",
        "record",
        "uri",
    )

    def __init__(self, device: Device, deployment_id: str, artifact_name: str, uri: str) -> None:
        self.device = device
        self.id = deployment_id
        self.artifact_name = artifact_name
        self.uri = uri
        cfg = device.config
        self.failure = device.behaviour.failure_for(device.record, deployment_id, cfg.seed)
        self.devlog = DeploymentLog()
        self.record = DeploymentRecord(deployment_id, artifact_name, device.clock.wall())
        self.rebooted = False
        self.reason: str | None = None
        self.info_provides: dict[str, str] = {}
        self.control_map: ControlMap | None = None
        self.paused: set[str] = set()  # states whose pause status was reported

    def run(self) -> DeploymentRecord | None:
        """Walk the states; None when the device was stopped before the deployment ended."""
        self.note("info", f"Running mender-update {CLIENT_VERSION}")
        self.note("info", f"Deployment with ID {self.id} started.")
        state: State | None = downloading
        while state is not None:
            if self.device.stopped:
                return None
            state = state(self)
        if self.device.stopped and self.record.result is None:
            return None  # stopped while paused or waiting for a control map: not an outcome
        self.record.finished = self.device.clock.wall()
        return self.record

    # Helpers the states share.
    def note(self, level: str, message: str) -> None:
        self.devlog.add(self.device.clock.wall(), level, message)

    def fraction(self, purpose: str) -> float:
        cfg = self.device.config
        return decide.fraction(cfg.seed, self.device.record.device_id, purpose, self.id)

    def report(self, status: str, *, retry: bool, with_log: bool = False) -> str:
        """PUT a status; intermediate ones are best effort, final ones retried like the client.

        `with_log` pushes the deployment log once the status is taken, as the C++ client does
        after a failure; a lost log upload repeats status and log on the same schedule."""
        device = self.device
        url = f"/api/devices/v1/deployments/device/deployments/{self.id}/status"
        body = json.dumps({"status": status}, separators=(",", ":")).encode()
        self.note("info", "Sending status update to server")
        attempt = 0
        while True:
            response: Response | None
            try:
                response = device.call(steps.status(status), "PUT", url, body)
            except TransportError as exc:
                response = None
                self.note("error", f"Could not send deployment status: {exc}")
            if response is not None:
                if response.status in (200, 204):
                    if not with_log:
                        return _GO_ON
                    response = self._push_log()
                    if response is not None and response.status in (200, 204):
                        return _GO_ON
                elif response.status == 409:
                    self.note(
                        "error",
                        "Could not send deployment status: deployment aborted "
                        "by the server (409 Conflict)",
                    )
                    return _ABORTED
                else:
                    self.note("error", f"Could not send deployment status: HTTP {response.status}")
            if not retry:
                return _GO_ON
            attempt += 1
            wait = device.retry_after(response)
            if wait is None:
                interval = backoff_interval(attempt, device.behaviour.retry_poll)
                if interval is None:
                    self.note("error", "Giving up on sending status updates to server")
                    return _GAVE_UP
                wait = interval * device.config.time_scale
            self.note("info", f"Retrying status update after {wait:.0f} seconds")
            device.clock.sleep(wait)
            if device.stopped:
                return _GAVE_UP

    def _push_log(self) -> Response | None:
        """PUT the deployment log; the answer, or None when none came."""
        url = f"/api/devices/v1/deployments/device/deployments/{self.id}/log"
        try:
            response = self.device.call(steps.DEPLOYMENT_LOG, "PUT", url, self.devlog.body())
        except TransportError as exc:
            log.debug("device %s: log upload failed: %s", self.device.record.device_id, exc.kind)
            return None
        if response.status not in (200, 204):
            log.debug(
                "device %s: log upload answered %d", self.device.record.device_id, response.status
            )
        return response

    def enter(self, status: str) -> bool:
        """Show the phase and report it as its status; False when the server aborted."""
        self.device.set_phase(status)
        return self.report(status, retry=False) != _ABORTED

    def fail(self, reason: str, log_lines: Sequence[str] = ()) -> State:
        """Enter the failure path; `log_lines` are what the device logged as it failed."""
        for line in log_lines:
            self.note("error", line)
        self.reason = reason
        log.info(
            "device %s: deployment %s fails: %s", self.device.record.device_id, self.id, reason
        )
        return rollback if self.rebooted or failures.PHASE_OF.get(reason) == "install" else failure

    def abort(self) -> State | None:
        log.info(
            "device %s: deployment %s aborted by the server", self.device.record.device_id, self.id
        )
        self.record.result = "aborted"
        if self.rebooted:  # back to the old partition, silently
            seconds = self.device.behaviour.reboot.pick(self.fraction("abort-reboot"))
            self.device.restart("reboot", seconds)
        return None


def downloading(d: Deployment) -> State | None:
    device = d.device
    if not d.enter("downloading"):
        return d.abort()
    failure = d.failure
    download = Download(
        device.transport,
        device.clock,
        d.uri,
        d.devlog,
        device_id=device.record.device_id,
        deployment_id=d.id,
        rate_kbps=device.behaviour.down_kbps,
        time_scale=device.config.time_scale,
        max_bytes=device.behaviour.network.max_download_bytes,
        break_at=(0.2 + 0.6 * d.fraction("reset"))
        if failure == failures.DOWNLOAD_CONNECTION_RESET
        else None,
        corrupt_manifest=failure == failures.DOWNLOAD_CHECKSUM_MISMATCH,
    )
    chunks = download.chunks()
    try:
        info = read_artifact(
            chunks,
            verify_key=device.behaviour.artifact_verify_key,
            device_type=device.record.device_type,
        )
    except ArtifactError as exc:
        d.note("error", str(exc))
        simulated = failure == failures.DOWNLOAD_CHECKSUM_MISMATCH
        return d.fail(failure if simulated else f"artifact_{exc.kind}")
    except (TransportError, DownloadError) as exc:
        d.note("error", f"Unexpected error during download: {exc}")
        simulated = failure == failures.DOWNLOAD_CONNECTION_RESET
        return d.fail(failure if simulated else "download_failed")
    finally:
        chunks.close()
        device.listener.download_finished(device, download.offset, download.seconds)
    d.info_provides = {k: v for k, v in info.provides.items() if k != "artifact_name"}
    return before_installing


def installing(d: Deployment) -> State | None:
    device = d.device
    if not d.enter("installing"):
        return d.abort()
    d.note("info", "Installing artifact...")
    seconds = device.behaviour.install.pick(d.fraction("install")) * device.config.time_scale
    errors = failures.INSTALL_ERRORS.get(d.failure or "")
    if errors:
        seconds *= 0.2 + 0.7 * d.fraction("install-fail")
    device.clock.sleep(seconds)
    device.listener.downtime(device, "install", seconds)
    if errors:
        return d.fail(d.failure or "", errors)
    return before_rebooting


def rebooting(d: Deployment) -> State | None:
    device = d.device
    if not d.enter("rebooting"):
        return d.abort()
    d.rebooted = True
    device.restart("reboot", device.behaviour.reboot.pick(d.fraction("reboot")))
    if d.failure == failures.REBOOT_KERNEL_PANIC:
        return d.fail(d.failure, failures.REBOOT_ERRORS)
    return committing


def committing(d: Deployment) -> State | None:
    device = d.device
    device.set_phase("committing")
    outcome = d.report("installing", retry=True)  # the first request after boot re-authenticates
    if outcome == _ABORTED:
        return d.abort()
    if outcome == _GAVE_UP:
        return d.fail("status_report_failed")
    return controlled(d, "ArtifactCommit_Enter", commit)


def commit(d: Deployment) -> State | None:
    if d.failure == failures.COMMIT_HEALTH_CHECK:
        return d.fail(d.failure, failures.COMMIT_ERRORS)
    return success


def success(d: Deployment) -> State | None:
    device = d.device
    record = device.record
    record.artifact_name = d.artifact_name
    record.partition = "b" if record.partition == "a" else "a"
    record.provides = d.info_provides
    d.note("info", f"Deployment with ID {d.id} finished with status: Success")
    d.record.result = "success"
    device.set_phase("reporting")
    d.report("success", retry=True)
    return None


def rollback(d: Deployment) -> State | None:
    device = d.device
    device.set_phase("rolling-back")
    d.note("info", "Rolling back to the previous partition")
    if d.rebooted:
        d.note("info", "Rebooting into the previous partition (ArtifactRollbackReboot)")
        device.restart("reboot", device.behaviour.reboot.pick(d.fraction("rollback-reboot")))
    d.note("info", "Rollback successful")
    return failure


def failure(d: Deployment) -> State | None:
    device = d.device
    device.set_phase("reporting")
    d.record.result = "failure"
    d.record.failure_reason = d.reason
    d.report("failure", retry=True, with_log=True)
    return None


# ---- update control maps (Go client 3.5.3: fetchControlMapState, controlMapState,
# controlMapPauseState in app/state.go) ---------------------------------------------------------


def before_installing(d: Deployment) -> State | None:
    return controlled(d, "ArtifactInstall_Enter", installing)


def before_rebooting(d: Deployment) -> State | None:
    return controlled(d, "ArtifactReboot_Enter", rebooting)


def controlled(d: Deployment, state: str, then: State) -> State | None:
    """`then` once the map lets the update go on; the failure or abort path otherwise."""
    if d.control_map is None:
        return then
    device = d.device
    fetched, after = _fetch_control_map(d)
    while fetched:
        action = d.control_map.query(state)
        if action == "continue":
            return then
        if action == "fail":
            failed = d.fail(CONTROL_MAP_FAIL, [f"Update Control: Forced update failure in {state}"])
            return rollback if state == "ArtifactReboot_Enter" else failed
        device.set_phase("paused")
        if state not in d.paused:
            d.paused.add(state)
            d.note("info", f"Update Control: Pausing before entering {state} state")
            if d.report(PAUSE_STATUS[state], retry=False) == _ABORTED:
                return d.abort()
        # Fetch again at the map's half-life, at most one poll interval away.
        wait = d.control_map.refresh_at - device.clock.now()
        device.clock.sleep(min(max(wait, 0.0), device.control_map_lifetime() / 2))
        if device.stopped:
            return None
        fetched, after = _fetch_control_map(d)
    return after


def _fetch_control_map(d: Deployment) -> tuple[bool, State | None]:
    """GET the map again, replacing and restamping it: (True, None); else (False, the next
    state): abort on 404 (the deployment is gone), failure once retries are exhausted."""
    device = d.device
    url = f"/api/devices/v2/deployments/device/deployments/{d.id}/update_control_map"
    attempt = 0
    while True:
        error = ""
        try:
            response = device.call(steps.CONTROL_MAP, "GET", url)
        except TransportError as exc:
            response, error = None, str(exc)
        if response is not None and response.status == 404:
            d.note("error", "The deployment was aborted from the server")
            return False, d.abort()
        if response is not None and response.status == 200:
            try:
                data = json.loads(response.body).get("update_control_map")
                if data is None:
                    raise ControlMapError("No control map returned")
                d.control_map = ControlMap.parse(
                    data, d.id, device.clock.now(), device.control_map_lifetime()
                )
                return True, None
            except (ValueError, AttributeError) as exc:
                error = str(exc)
        elif response is not None:
            error = "Invalid response received from the server"
        attempt += 1
        interval = backoff_interval(attempt, device.poll_interval())
        if interval is None:
            lines = [f"Update control map check failed: {error}"]
            return False, d.fail(CONTROL_MAP_UNREACHABLE, lines)
        d.note("error", f"Update control map check failed: {error}, retrying...")
        device.clock.sleep(interval * device.config.time_scale)
        if device.stopped:
            return False, None
