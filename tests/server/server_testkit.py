"""A minimal device speaking the device API with real keys, and the OpenAPI check of its
exchanges against Mender's bundled spec."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jwt
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.validation.request.validators import (
    V30RequestBodyValidator,
    V30RequestParametersValidator,
)
from openapi_core.validation.response.validators import V30ResponseHeadersValidator

from mendersim.fleet import keys

SPEC_SERVER = "https://hosted.mender.io"

AUTH = "/api/devices/v1/authentication/auth_requests"
INVENTORY = "/api/devices/v1/inventory/device/attributes"
DEPLOYMENTS = "/api/devices/v1/deployments/device/deployments"
NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"


class SpecCheck:
    """Validates real requests/responses (requests' objects) against Mender's OpenAPI spec.

    Two places where the spec and Mender's servers disagree are handled explicitly: the spec
    lists DeviceJWT security on auth_requests (the real endpoint takes no token), and declares
    the issued token as application/json where deviceauth answers application/jwt.
    """

    def __init__(self, spec_path: Path) -> None:
        self.api = OpenAPI.from_file_path(str(spec_path))
        spec = self.api.spec
        self._body = V30RequestBodyValidator(spec)
        self._params = V30RequestParametersValidator(spec)
        self._headers = V30ResponseHeadersValidator(spec)

    @staticmethod
    def _request(response: requests.Response) -> RequestsOpenAPIRequest:
        prepared = response.request.copy()
        base = prepared.url.split("/api/", 1)
        prepared.url = f"{SPEC_SERVER}/api/{base[1]}"
        return RequestsOpenAPIRequest(prepared)

    def __call__(self, response: requests.Response, *, valid_request: bool = True) -> None:
        """`valid_request=False` for requests a test malforms on purpose: only the answer is
        checked then."""
        _check_request_id(response)
        request = self._request(response)
        is_auth = request.path == AUTH
        if not valid_request:
            pass
        elif is_auth:
            self._body.validate(request)
            self._params.validate(request)
        else:
            self.api.validate_request(request)
        openapi_response = RequestsOpenAPIResponse(response)
        if is_auth and response.status_code == 200:
            assert response.headers["Content-Type"] == "application/jwt"
            assert response.text.count(".") == 2
        elif not response.content:
            # `content: {}` answers (204s) have no body; openapi-core insists on one.
            self._headers.validate(request, openapi_response)
        elif response.status_code == 401 and not self._documents(request, "401"):
            # The gateway's token check answers 401 on every DeviceJWT endpoint, listed or not.
            assert isinstance(response.json()["error"], str)
        else:
            self.api.validate_response(request, openapi_response)

    def _documents(self, request: RequestsOpenAPIRequest, status: str) -> bool:
        operation = self.api.spec / "paths" / _template(request.path) / request.method.lower()
        return status in (operation / "responses")


def _check_request_id(response: requests.Response) -> None:
    """Mender's convention: every answer names its request, errors repeat it in the body."""
    request_id = response.headers.get("X-MEN-RequestID")
    assert request_id, f"{response.request.method} {response.url}: no X-MEN-RequestID"
    assert request_id == response.request.headers.get("X-MEN-RequestID", request_id)
    if response.status_code >= 400 and response.content:
        assert response.json()["request_id"] == request_id


def _template(path: str) -> str:
    """The spec's path template of a device-API path (deployment ids become `{id}`)."""
    parts = path.split("/")
    if path.startswith(DEPLOYMENTS) and len(parts) == 8 and parts[7] in ("status", "log"):
        parts[6] = "{id}"
    return "/".join(parts)


class SimDevice:
    """One device: identity, key, token; every exchange goes through the spec check."""

    def __init__(
        self,
        url: str,
        check: SpecCheck | None,
        key_type: str = "ed25519",
        key: keys.PrivateKey | None = None,
        identity: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.check = check
        self.key = key or keys.generate(key_type)
        self.identity = identity or {"mac": str(uuid.uuid4())}
        self.session = requests.Session()
        self.token: str | None = None

    @property
    def pubkey(self) -> str:
        return keys.public_pem(self.key)

    @property
    def device_id(self) -> str:
        """The server's id for this device, from the subject of its token."""
        assert self.token, "authenticate first"
        return jwt.decode(self.token, options={"verify_signature": False})["sub"]

    def auth_body(self, **extra: Any) -> bytes:
        body = {"id_data": json.dumps(self.identity, sort_keys=True), "pubkey": self.pubkey}
        body.update(extra)
        return json.dumps(body).encode()

    def _checked(self, response: requests.Response, valid: bool = True) -> requests.Response:
        if self.check is not None:
            self.check(response, valid_request=valid)
        return response

    def post_auth(
        self, body: bytes, signature: str | None, *, valid: bool = True
    ) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-MEN-Signature"] = signature
        return self._checked(self.session.post(self.url + AUTH, data=body, headers=headers), valid)

    def authenticate(self) -> requests.Response:
        body = self.auth_body()
        response = self.post_auth(body, keys.sign_b64(self.key, body))
        self.token = response.text if response.status_code == 200 else None
        return response

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def put_inventory(
        self, attributes: Any, method: str = "PUT", *, valid: bool = True
    ) -> requests.Response:
        return self._checked(
            self.session.request(
                method, self.url + INVENTORY, json=attributes, headers=self.headers()
            ),
            valid,
        )

    def next(
        self, artifact_name: str, device_type: str, *, valid: bool = True
    ) -> requests.Response:
        params = {"artifact_name": artifact_name, "device_type": device_type}
        return self._checked(
            self.session.get(
                f"{self.url}{DEPLOYMENTS}/next", params=params, headers=self.headers()
            ),
            valid,
        )

    def status(
        self, deployment_id: str, status: str, *, valid: bool = True, **extra: Any
    ) -> requests.Response:
        return self._checked(
            self.session.put(
                f"{self.url}{DEPLOYMENTS}/{deployment_id}/status",
                json={"status": status, **extra},
                headers=self.headers(),
            ),
            valid,
        )

    def log(self, deployment_id: str, messages: Any, *, valid: bool = True) -> requests.Response:
        return self._checked(
            self.session.put(
                f"{self.url}{DEPLOYMENTS}/{deployment_id}/log",
                json={"messages": messages},
                headers=self.headers(),
            ),
            valid,
        )
