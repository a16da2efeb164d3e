"""Mender's management API, the calls a rollout scenario needs, over `requests`.

Works against a real Mender server (a personal access token as the bearer token) and against
`mendersim serve` (its `--mgmt-token`). Every failure is a `MenderApiError` naming the call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests

from mendersim.errors import MendersimError

DEVAUTH = "/api/management/v2/devauth/devices"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
ARTIFACTS = "/api/management/v1/deployments/artifacts"
INVENTORY = "/api/management/v1/inventory/devices"
DEVICECONFIG = "/api/management/v1/deviceconfig/configurations/device"
_PAGE = 500


class MenderApiError(MendersimError):
    """A management call that failed: method, path, HTTP status (0: no answer) and the message."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        answer = f"HTTP {status}" if status else "no answer"
        super().__init__(f"{method} {path}: {answer}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return data["error"]
    except ValueError:
        pass
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason or "no details"


class ManagementClient:
    def __init__(
        self, base_url: str, token: str, *, verify_tls: bool = True, timeout: float = 30
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.verify = verify_tls

    def _call(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> requests.Response:
        try:
            response = self.session.request(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise MenderApiError(method, path, 0, str(exc).splitlines()[0]) from None
        if response.status_code not in expect:
            raise MenderApiError(method, path, response.status_code, _message(response))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise MenderApiError(method, path, response.status_code, "answer is not JSON") from None

    @staticmethod
    def _created_id(response: requests.Response, method: str, path: str) -> str:
        location = response.headers.get("Location", "").rstrip("/")
        if not location:
            raise MenderApiError(method, path, response.status_code, "no Location in the answer")
        return location.rsplit("/", 1)[-1]

    # ---- devices -----------------------------------------------------------------------------

    def list_devices(
        self, status: str | None = None, page: int = 1, per_page: int = _PAGE
    ) -> list[dict]:
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if status:
            params["status"] = status
        return self._json("GET", DEVAUTH, params=params)

    def count_devices(self, status: str | None = None) -> int:
        params = {"status": status} if status else None
        return int(self._json("GET", f"{DEVAUTH}/count", params=params)["count"])

    def set_auth_status(self, device_id: str, auth_id: str, status: str) -> None:
        path = f"{DEVAUTH}/{device_id}/auth/{auth_id}/status"
        self._call("PUT", path, json={"status": status}, expect=(204,))

    def preauthorize(self, identity_data: dict, pubkey: str) -> None:
        body = {"identity_data": identity_data, "pubkey": pubkey}
        self._call("POST", DEVAUTH, json=body, expect=(201,))

    def assign_group(self, device_id: str, group: str) -> None:
        self._call("PUT", f"{INVENTORY}/{device_id}/group", json={"group": group}, expect=(204,))

    def device_inventory(self, device_id: str) -> dict:
        return self._json("GET", f"{INVENTORY}/{device_id}")

    def set_configuration(self, device_id: str, configuration: dict[str, str]) -> None:
        """The configuration the device is to apply (Mender's deviceconfig management API)."""
        self._call("PUT", f"{DEVICECONFIG}/{device_id}", json=configuration, expect=(204,))

    def device_configuration(self, device_id: str) -> dict:
        """`configured`, `reported` and their timestamps."""
        return self._json("GET", f"{DEVICECONFIG}/{device_id}")

    # ---- artifacts ---------------------------------------------------------------------------

    def upload_artifact(self, path: str | os.PathLike, description: str = "") -> str:
        file_path = Path(path)
        if not file_path.is_file():
            raise MendersimError(f"{file_path}: no such artifact file")
        with open(file_path, "rb") as handle:
            # The artifact must be the last part of the form, as Mender requires.
            fields = [
                ("description", (None, description)),
                ("size", (None, str(file_path.stat().st_size))),
                ("artifact", (file_path.name, handle, "application/octet-stream")),
            ]
            response = self._call("POST", ARTIFACTS, files=fields, expect=(201,))
        return self._created_id(response, "POST", ARTIFACTS)

    def list_artifacts(self) -> list[dict]:
        return self._json("GET", ARTIFACTS)

    # ---- deployments -------------------------------------------------------------------------

    def create_deployment(
        self,
        name: str,
        artifact_name: str,
        *,
        devices: list[str] | None = None,
        group: str | None = None,
        all_devices: bool = False,
        update_control_map: dict[str, Any] | None = None,
    ) -> str:
        """`update_control_map` (Enterprise): `{"states": {"ArtifactInstall_Enter":
        {"action": "pause"}, ...}}`, as the deployment creation body takes it."""
        if sum(bool(x) for x in (devices, group, all_devices)) != 1:
            raise MendersimError("create_deployment: give exactly one of devices, group, all")
        body: dict[str, Any] = {"name": name, "artifact_name": artifact_name}
        if update_control_map is not None:
            body["update_control_map"] = update_control_map
        if group:
            path = f"{DEPLOYMENTS}/group/{group}"
        else:
            path = DEPLOYMENTS
            body.update({"devices": devices} if devices else {"all_devices": True})
        response = self._call("POST", path, json=body, expect=(201,))
        return self._created_id(response, "POST", path)

    def list_deployments(self) -> list[dict]:
        deployments: list[dict] = []
        page = 1
        while True:
            chunk = self._json(
                "GET", DEPLOYMENTS, params={"page": page, "per_page": _PAGE, "sort": "desc"}
            )
            deployments.extend(chunk)
            if len(chunk) < _PAGE:
                return deployments
            page += 1

    def deployment_statistics(self, deployment_id: str) -> dict[str, int]:
        return self._json("GET", f"{DEPLOYMENTS}/{deployment_id}/statistics")

    def set_control_map(self, deployment_id: str, update_control_map: dict[str, Any]) -> None:
        """Replace a deployment's control map (Enterprise's PATCH), e.g. to continue a pause."""
        path = f"{DEPLOYMENTS}/{deployment_id}"
        self._call("PATCH", path, json={"update_control_map": update_control_map}, expect=(204,))

    def abort_deployment(self, deployment_id: str) -> None:
        path = f"{DEPLOYMENTS}/{deployment_id}/status"
        self._call("PUT", path, json={"status": "aborted"}, expect=(204,))

    def mendersim_status(self) -> dict[str, Any]:
        """The embedded server's own counters (`/_mendersim/status`); not a Mender endpoint."""
        return self._json("GET", "/_mendersim/status")

    def deployment_devices(self, deployment_id: str, status: str | None = None) -> list[dict]:
        """The devices of a deployment with their status, every page ("List Devices in
        Deployment"); `status` filters, e.g. `failure`."""
        devices: list[dict] = []
        page = 1
        path = f"{DEPLOYMENTS}/{deployment_id}/devices/list"
        while True:
            params: dict[str, Any] = {"page": page, "per_page": _PAGE}
            if status:
                params["status"] = status
            chunk = self._json("GET", path, params=params)
            devices.extend(chunk)
            if len(chunk) < _PAGE:
                return devices
            page += 1

    def device_log(self, deployment_id: str, device_id: str) -> str:
        return self._call("GET", f"{DEPLOYMENTS}/{deployment_id}/devices/{device_id}/log").text


__all__ = ["ManagementClient", "MenderApiError"]
