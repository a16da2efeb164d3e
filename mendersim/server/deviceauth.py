"""`POST /api/devices/v1/authentication/auth_requests`: signature check, acceptance, JWT."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging

import jwt
from aiohttp import web

from mendersim.fleet import keys
from mendersim.server import replies
from mendersim.server.context import ServerContext
from mendersim.server.routing import OPEN, Route

log = logging.getLogger(__name__)

AUTH_PATH = "/api/devices/v1/authentication/auth_requests"
_KEY_CACHE_LIMIT = 100_000


def canonical_id_data(identity: dict) -> str:
    """Mender identifies a device by its identity with keys sorted, serialised compactly."""
    return json.dumps(identity, sort_keys=True, separators=(",", ":"))


def tenant_of(tenant_token: str | None) -> str | None:
    """The tenant a tenant token names: its `mender.tenant` claim, else a digest of the token."""
    if not tenant_token:
        return None
    try:
        claims = jwt.decode(tenant_token, options={"verify_signature": False})
        tenant = claims.get("mender.tenant")
        if isinstance(tenant, str) and tenant:
            return tenant
    except jwt.PyJWTError:
        pass
    return hashlib.sha256(tenant_token.encode()).hexdigest()[:24]


class DeviceAuth:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._keys: dict[str, tuple[keys.PublicKey, str]] = {}

    def routes(self) -> list[Route]:
        return [Route("POST", AUTH_PATH, self.auth_request, OPEN, "auth")]

    def _load_key(self, pem: str) -> tuple[keys.PublicKey, str]:
        """Parsed key and its normalised PEM, cached: devices authenticate again and again."""
        cached = self._keys.get(pem)
        if cached is None:
            key = keys.load_public(pem)
            cached = (key, keys.public_pem(key))
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            self._keys[pem] = cached
        return cached

    async def auth_request(self, request: web.Request) -> web.Response:
        signature = request.headers.get("X-MEN-Signature")
        if not signature:
            return replies.error(400, "missing request signature header", request)
        body = await request.read()
        try:
            data = json.loads(body)
            id_data = replies.require_str(data, "id_data")
            pubkey = replies.require_str(data, "pubkey")
            tenant_token = data.get("tenant_token")
            if tenant_token is not None and not isinstance(tenant_token, str):
                raise replies.BadRequest("tenant_token: must be a string")
            identity = json.loads(id_data)
        except (ValueError, UnicodeDecodeError):
            return replies.error(400, "failed to decode auth request: not JSON", request)
        except replies.BadRequest as exc:
            return replies.error(400, f"invalid auth request: {exc}", request)
        if not isinstance(identity, dict) or not identity:
            message = "invalid auth request: id_data must be a JSON object"
            return replies.error(400, message, request)
        try:
            key, normalised = self._load_key(pubkey)
        except keys.InvalidKeyError as exc:
            return replies.error(400, f"invalid auth request: {exc}", request)
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return replies.error(401, "signature verification failed", request)
        if not keys.verify(key, raw_signature, body):
            return replies.error(401, "signature verification failed", request)

        outcome, device = self.ctx.state.authenticate(
            identity, canonical_id_data(identity), normalised, tenant_of(tenant_token)
        )
        if outcome == "limit":
            log.info("device %s refused: maximum number of accepted devices reached", device.id)
            return replies.error(401, "maximum number of accepted devices reached", request)
        if outcome != "accepted":
            return replies.error(401, "unauthorized", request)
        token = self.ctx.tokens.issue(device.id, device.tenant)
        return web.Response(body=token.encode("ascii"), content_type="application/jwt")
