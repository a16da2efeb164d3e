"""Everything `mendersim serve` can be told, in one value handed to the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mendersim.server.faults import FaultSettings

WEEK = 7 * 86400.0
DAY = 86400.0


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    mgmt_token: str = ""
    data_dir: Path | None = None  # None: a temporary directory removed at exit
    db: Path | None = None  # SQLite file; None keeps state in memory only
    flush_interval: float = 5.0
    acceptance: str = "auto"
    max_devices: int | None = None
    jwt_lifetime: float = WEEK
    v2_next: bool = True
    download_rate: int | None = None  # bytes/s per connection
    presign_lifetime: float = DAY
    public_url: str | None = None  # base of presigned download links; default http://host:port
    faults: FaultSettings = field(default_factory=FaultSettings)
    access_log: bool = False
    max_upload: int = 4 * 1024**3  # bytes of one artifact upload
    client_timeout: float = 30.0  # seconds a client may take to send a request (or sit idle)
    deviceconnect_ping: float = 54.0  # seconds between pings on an idle deviceconnect websocket

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
