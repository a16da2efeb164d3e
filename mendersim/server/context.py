"""What every handler shares: configuration, state, tokens, artifact store, faults, counters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mendersim.server.config import ServerConfig
from mendersim.server.faults import FaultInjector
from mendersim.server.state import ServerState
from mendersim.server.storage import ArtifactStore
from mendersim.server.tokens import TokenIssuer


@dataclass(slots=True)
class ServerContext:
    config: ServerConfig
    state: ServerState
    tokens: TokenIssuer
    store: ArtifactStore
    faults: FaultInjector
    requests: dict[str, dict[str, int]] = field(default_factory=dict)  # key → code → count
    # Awaited before an answer that promises a write (a finished deployment); `--db` sets it.
    durable: Callable[[], Awaitable[None]] | None = None
