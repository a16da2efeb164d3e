"""The authentication request, serialised once and signed exactly as sent."""

from __future__ import annotations

import json

from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord

AUTH_PATH = "/api/devices/v1/authentication/auth_requests"


def auth_request(
    record: DeviceRecord, tenant_token: str, tier: str = "standard"
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an auth request; the key is loaded here and dropped afterwards.

    The public key is derived from the private key for every request, and `tier` is always
    sent, as the C++ client (5.x, `FetchJWTToken`, `DeviceTier`) does."""
    key = record.private_key()
    payload = {"id_data": record.id_data_json(), "pubkey": keys.public_pem(key)}
    if tenant_token:
        payload["tenant_token"] = tenant_token
    payload["tier"] = tier
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-MEN-Signature": keys.sign_b64(key, body),
    }
    return body, headers
