"""A device's acceptance belongs to a server: the store keeps it per server URL and tenant.

A status learnt from one server says nothing about another (a fresh `mendersim serve`, a staging
server, another organisation's tenant on hosted Mender), so the store keys it by the server's
URL, normalised, and by a fingerprint of the tenant token the devices sent. The token itself is
a secret and never reaches the store.

The embedded server listens on a new port and starts empty in every run: its statuses are kept
under the name `embedded`, for the last run only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from mendersim.errors import ConfigError

TABLE = """
CREATE TABLE acceptance (
    device_id TEXT NOT NULL REFERENCES devices (device_id),
    server TEXT NOT NULL,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (device_id, server, tenant)
) WITHOUT ROWID
"""
UPSERT = (
    "INSERT INTO acceptance (device_id, server, tenant, status, updated_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, server, tenant)"
    " DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at"
)
# Devices by the status one server and tenant last gave them; the devices it has not answered
# yet are the rest of the fleet (new). No join with the devices: a million rows fewer to read.
STATUS_COUNTS = "SELECT status, COUNT(*) FROM acceptance WHERE server = ? AND tenant = ? GROUP BY 1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
EMBEDDED = "embedded"
FINGERPRINT_HEX = 16


@dataclass(frozen=True, slots=True)
class ServerKey:
    """Whose answers a device status records: a server and a tenant of it."""

    url: str  # scheme://host[:port][/path], lower case, no default port, user info or slash
    tenant: str = ""  # fingerprint of the tenant token; "" without a tenant token

    @classmethod
    def of(cls, url: str, tenant_token: str = "") -> ServerKey:
        return cls(normalized_url(url), tenant_fingerprint(tenant_token))

    @classmethod
    def embedded(cls, tenant_token: str = "") -> ServerKey:
        return cls(EMBEDDED, tenant_fingerprint(tenant_token))

    def __str__(self) -> str:
        name = "the embedded server (last run)" if self.url == EMBEDDED else self.url
        return f"{name} (tenant {self.tenant})" if self.tenant else name


def normalized_url(url: str) -> str:
    """One spelling per server: `HTTPS://Mender.Example.com:443/` is `https://mender.example.com`.

    User info is dropped: it may hold a password."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError("--host", f"{url!r} is not a server URL ({exc})") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError("--host", f"{url!r} is not an http(s) server URL")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}"


def tenant_fingerprint(tenant_token: str) -> str:
    """A short SHA-256 of the token: tells tenants apart without keeping the secret."""
    if not tenant_token:
        return ""
    digest = hashlib.sha256(tenant_token.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:FINGERPRINT_HEX]}"
