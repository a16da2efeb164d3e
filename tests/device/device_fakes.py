"""A scripted Mender server behind the Transport interface, and a virtual clock.

The fake answers the way PROTOCOL.md says a Mender server does, records every exchange with the
virtual time it happened at, and lets a test script failures (status codes, dropped connections,
revoked tokens, 409s) without sockets or real sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mendersim.device.transport import Response, TransportError
from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord, compact_json

START_WALL = 1_790_000_000.0
STORAGE = "http://storage.example/artifacts/"


class VirtualClock:
    """Sleeping advances time; a device can be told to stop once time passes a deadline.

    Actions given to `later` run when a sleep passes their time, in time order."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._stop_at: tuple[float, object] | None = None
        self._later: list[tuple[float, int, list]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return START_WALL + self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        until = self.t + seconds
        while self._later and self._later[0][0] <= until:
            when, _, entry = heapq.heappop(self._later)
            self.t = max(self.t, when)
            if entry:
                entry.pop()()
        self.t = max(self.t, until)
        if self._stop_at and self.t >= self._stop_at[0]:
            self._stop_at[1].stop()

    def later(self, seconds: float, action: Callable[[], None]) -> Callable[[], None]:
        entry = [action]
        heapq.heappush(self._later, (self.t + seconds, next(self._order), entry))
        return entry.clear

    def stop_at(self, when: float, device: object) -> None:
        self._stop_at = (when, device)


@dataclass
class Exchange:
    at: float
    step: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    def json(self):
        return json.loads(self.body)


@dataclass
class Offer:
    deployment_id: str
    artifact_name: str
    artifact: bytes


@dataclass
class FakeMender:
    """The server side; also the Transport the device is given."""

    clock: VirtualClock
    refuse_auth: int = 0  # number of auth attempts answered 401 (pending) before accepting
    v2: bool = False  # open-source servers answer 404 on the v2 next endpoint
    offer: Offer | None = None
    scripted: dict[str, list[Response | TransportError]] = field(default_factory=dict)
    drop_after: list[int] = field(default_factory=list)  # break the next downloads mid-body
    conflict_on: set[str] = field(default_factory=set)  # statuses answered 409
    exchanges: list[Exchange] = field(default_factory=list)
    limit: int = 5000
    tokens_issued: int = 0
    valid_token: str | None = None
    hook: Callable[[Exchange], None] | None = None
    websockets: list[FakeWebSocket] = field(default_factory=list)  # every one opened

    def open_websockets(self) -> list[FakeWebSocket]:
        return [w for w in self.websockets if w.open]

    def drop_websockets(self, kind: str = "connection_reset") -> None:
        """The server side ends every open link (a restart, a gateway dropping them)."""
        for socket in self.open_websockets():
            socket.close()
            socket.on_closed(kind)

    def websocket(self, url, *, headers, on_closed, ping_every, deadline, link_down=None):
        step = "deviceconnect connect"
        exchange = Exchange(self.clock.now(), step, "GET", url, dict(headers), None)
        self.exchanges.append(exchange)
        assert len(self.exchanges) <= self.limit, "device made too many requests"
        queue = self.scripted.get(exchange.step)
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, TransportError):
                raise answer
            return answer
        if headers.get("Authorization") != f"Bearer {self.valid_token}":
            return Response(401, b'{"error":"unauthorized"}')
        socket = FakeWebSocket(self.clock, headers["Authorization"][7:], on_closed, ping_every)
        socket.link_down = link_down
        self.websockets.append(socket)
        return socket

    # What tests look at.
    def steps(self) -> list[str]:
        return [e.step for e in self.exchanges]

    def of(self, step: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.step == step]

    def statuses(self) -> list[str]:
        return [e.json()["status"] for e in self.exchanges if e.step.startswith("status:")]

    def revoke(self) -> None:
        self.valid_token = None

    # Transport.
    def request(self, step, method, url, *, headers=None, body=None) -> Response:
        exchange = Exchange(self.clock.now(), step, method, url, dict(headers or {}), body)
        self.exchanges.append(exchange)
        assert len(self.exchanges) <= self.limit, "device made too many requests"
        if self.hook:
            self.hook(exchange)
        queue = self.scripted.get(step)
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, TransportError):
                raise answer
            return answer
        if step == "auth":
            return self._auth()
        if headers is None or headers.get("Authorization") != f"Bearer {self.valid_token}":
            return Response(401, b'{"error":"unauthorized"}')
        if step in ("inventory", "inventory:churn"):
            return Response(200)
        if step == "deployments/next":
            return self._next(method, url, body)
        if step.startswith("status:"):
            status = json.loads(body)["status"]
            if status in self.conflict_on:
                self.offer = None  # an aborted deployment is no longer offered
                return Response(409, b'{"error":"deployment aborted"}')
            if status in ("success", "failure", "already-installed"):
                self.offer = None
            return Response(204)
        if step == "deployment log":
            return Response(204)
        raise AssertionError(f"unexpected request {step} {method} {url}")

    def _auth(self) -> Response:
        if self.refuse_auth > 0:
            self.refuse_auth -= 1
            return Response(401, b'{"error":"dev auth: unauthorized"}')
        self.tokens_issued += 1
        self.valid_token = f"jwt-{self.tokens_issued}"
        return Response(200, self.valid_token.encode(), {"content-type": "application/jwt"})

    def _next(self, method: str, url: str, body: bytes | None) -> Response:
        if method == "POST" and not self.v2:
            return Response(404, b'{"error":"not found"}')
        if self.offer is None:
            return Response(204)
        offer = self.offer
        answer = {
            "id": offer.deployment_id,
            "artifact": {
                "id": "a-" + offer.deployment_id,
                "artifact_name": offer.artifact_name,
                "source": {"uri": STORAGE + offer.deployment_id, "expire": "2030-01-01T00:00:00Z"},
                "device_types_compatible": ["tcu-imx8mm"],
            },
        }
        return Response(200, json.dumps(answer).encode(), {"content-type": "application/json"})

    @contextmanager
    def stream(self, step, url, *, headers=None) -> Iterator[_Stream]:
        exchange = Exchange(self.clock.now(), step, "GET", url, dict(headers or {}), None)
        self.exchanges.append(exchange)
        assert self.offer is not None and url == STORAGE + self.offer.deployment_id
        assert "Authorization" not in (headers or {}), "downloads go without the JWT"
        data = self.offer.artifact
        wanted = (headers or {}).get("Range")
        if wanted:
            start = int(wanted.split("=")[1].split("-")[0])
            yield _Stream(
                206,
                data,
                start,
                None,
                {
                    "content-length": str(len(data) - start),
                    "content-range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                },
            )
            return
        drop = self.drop_after.pop(0) if self.drop_after else None
        yield _Stream(200, data, 0, drop, {"content-length": str(len(data))})


class FakeWebSocket:
    """An open link as the device holds it; the test ends it from the server's side."""

    def __init__(self, clock, token, on_closed, ping_every) -> None:
        self._clock = clock
        self.token = token
        self.on_closed = on_closed
        self.ping_every = ping_every
        self.opened_at = clock.now()
        self.closed_at: float | None = None
        self.open = True

    def close(self) -> None:
        self.open = False
        self.closed_at = self._clock.now()


class _Stream:
    def __init__(self, status, data, start, drop, headers) -> None:
        self.status = status
        self.headers = headers
        self._data = data
        self._start = start
        self._drop = drop

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        position = self._start
        while position < len(self._data):
            if self._drop is not None and position >= self._drop:
                raise TransportError("connection_reset", "Connection reset by peer")
            chunk = self._data[position : position + size]
            position += len(chunk)
            yield chunk


BASELINE_INVENTORY = {
    "firmware_version": "4.2.1",
    "modem": "Quectel AG35",
    "manufacturer": "Volkswagen",
}
_KEYS: dict[str, keys.PrivateKey] = {}


def make_record(
    device_id: str = "automotive-000001",
    *,
    key_type: str = "ed25519",
    artifact_name: str = "tcu-fw-4.2.1",
    device_type: str = "tcu-imx8mm",
    inventory: dict | None = None,
) -> DeviceRecord:
    """A device record as the seed store would hand it (keys cached per type across tests)."""
    if key_type not in _KEYS:
        _KEYS[key_type] = keys.generate(key_type)
    key = _KEYS[key_type]
    return DeviceRecord(
        device_id=device_id,
        profile="automotive",
        key_type=key_type,
        id_data_text=compact_json({"vin": "WVWZZZ1JZXW000001", "mac": "02:00:00:00:00:01"}),
        private_key_pem=keys.private_pem(key),
        device_type=device_type,
        artifact_name=artifact_name,
        inventory_text=compact_json(inventory if inventory is not None else BASELINE_INVENTORY),
    )


def profile(**sections) -> dict:
    """An industry profile with Mender's intervals, every update succeeding, no shaping."""
    base = {
        "name": "automotive",
        "intervals": {"update_poll": 1800, "inventory_poll": 28800, "retry_poll": 300},
        "durations": {"install": {"min": 60, "max": 240}, "reboot": {"min": 30, "max": 90}},
        "update": {"success_rate": 1.0},
        "network": {"profile": "none"},
    }
    base.update(sections)
    return base


def failing(mode: str, **sections) -> dict:
    """A profile whose every update fails with `mode`."""
    return profile(update={"success_rate": 0.0, "failure_modes": {mode: 1}}, **sections)


def artifact(
    name: str = "tcu-fw-5.0.0", device_type: str = "tcu-imx8mm", size: int = 200_000, **options
) -> bytes:
    import io

    from mendersim.artifact.writer import write_artifact

    out = io.BytesIO()
    write_artifact(out, name=name, device_types=[device_type], payload_size=size, seed=7, **options)
    return out.getvalue()


class Recorder:
    """A DeviceListener that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        if name not in (
            "accepted",
            "status_changed",
            "phase_changed",
            "deployment_finished",
            "download_finished",
            "downtime",
        ):
            raise AttributeError(name)
        return lambda device, *args: self.calls.append((name, *args))

    def named(self, name: str) -> list[tuple]:
        return [call[1:] for call in self.calls if call[0] == name]


def rig(profile_dict: dict | None = None, *, record: DeviceRecord | None = None, **config):
    """A device wired to a fake server and a virtual clock: (device, server, clock, listener)."""
    from mendersim.device.behaviour import Behaviour
    from mendersim.device.engine import Device, EngineConfig

    clock = VirtualClock()
    server = FakeMender(clock)
    listener = Recorder()
    config.setdefault("start_spread", 0)
    device = Device(
        record or make_record(),
        Behaviour.from_profile(profile_dict or profile()),
        server,
        clock,
        config=EngineConfig(**config),
        listener=listener,
    )
    return device, server, clock, listener
