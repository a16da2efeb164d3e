"""Mender's request ids: `X-MEN-RequestID` echoed when the client sent one, made up otherwise.

Mender's services (mender-server `pkg/requestid`) answer with a random UUID. A fresh
`uuid.uuid4()` costs about 2.5 µs, a sizeable share of a 204 poll, so ids are UUID-shaped
strings from a random per-process prefix and a counter: unique, and ten times cheaper.
"""

from __future__ import annotations

import itertools
import secrets

HEADER = "X-MEN-RequestID"
KEY = "mendersim_request_id"  # where the middleware keeps the id on the request


class RequestIds:
    """Makes the ids of one server process: the random part is fixed, the last group counts."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._counter = itertools.count()
        digits = secrets.token_hex(9)
        variant = "89ab"[int(digits[17], 16) % 4]  # RFC 4122 variant; the version nibble is 4
        self._prefix = f"{digits[:8]}-{digits[8:12]}-4{digits[12:15]}-{variant}{digits[15:18]}-"

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"
