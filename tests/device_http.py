"""A plain requests-based Transport and a real clock, for tests against real servers (device and
server areas alike: the suite's root folder is on the import path)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from mendersim.device.transport import Response, TransportError


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RequestsTransport:
    """Paths are joined to `base_url`; absolute URLs (downloads) are used as given. `check`, when
    given, sees every answer (a spec check, say) before the device does."""

    def __init__(
        self, base_url: str, check: Callable[[requests.Response], None] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.check = check
        self.log: list[tuple[str, int]] = []

    def _url(self, url: str) -> str:
        return url if "://" in url else self.base_url + url

    def request(self, step, method, url, *, headers=None, body=None) -> Response:
        try:
            answer = self.session.request(
                method, self._url(url), headers=headers, data=body, timeout=10
            )
        except requests.ConnectionError as exc:
            raise TransportError("connection_refused", str(exc)) from None
        except requests.Timeout as exc:
            raise TransportError("timeout", str(exc)) from None
        if self.check is not None:
            self.check(answer)
        self.log.append((step, answer.status_code))
        return Response(
            answer.status_code, answer.content, {k.lower(): v for k, v in answer.headers.items()}
        )

    @contextmanager
    def stream(self, step, url, *, headers=None) -> Iterator[_Stream]:
        try:
            answer = requests.get(self._url(url), headers=headers, stream=True, timeout=10)
        except requests.RequestException as exc:
            raise TransportError("connection_refused", str(exc)) from None
        self.log.append((step, answer.status_code))
        try:
            yield _Stream(answer)
        finally:
            answer.close()


class _Stream:
    def __init__(self, answer: requests.Response) -> None:
        self.status = answer.status_code
        self.headers = {k.lower(): v for k, v in answer.headers.items()}
        self._answer = answer

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        try:
            yield from self._answer.iter_content(size)
        except requests.RequestException as exc:
            raise TransportError("connection_reset", str(exc)) from None
