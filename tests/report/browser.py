"""Headless Chromium driven over the Chrome DevTools Protocol, to look at a report as a reader's
browser shows it: what it requested, what it logged as errors, what a script on the page reads.

Debian's chromium (installed by ci/test.sh) listens on a free port (`--remote-debugging-port=0`
prints the browser's websocket address); websocket-client speaks the protocol, one page target in
flat session mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = "/usr/bin/chromium"
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


@dataclass
class PageVisit:
    """What loading one page did: every request's URL, and the errors the page reported."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


class Page:
    def __init__(self, socket: websocket.WebSocket, session: str) -> None:
        self._socket = socket
        self._session = session
        self._next_id = 0
        self.visit = PageVisit()

    def call(self, method: str, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        wanted = self._next_id
        message = {"id": wanted, "method": method, "params": params, "sessionId": self._session}
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self._receive(deadline)
            if answer.get("id") == wanted:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
        raise TimeoutError(f"{method}: no answer in {timeout_s} s")

    def wait_for(self, event: str, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message.get("method") == event:
                return message.get("params", {})
        raise TimeoutError(f"no {event} in {timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _receive(self, deadline: float) -> dict[str, Any]:
        self._socket.settimeout(max(deadline - time.monotonic(), 0.05))
        try:
            message = json.loads(self._socket.recv())
        except websocket.WebSocketTimeoutException:
            return {}
        self._note(message.get("method", ""), message.get("params", {}))
        return message

    def _note(self, method: str, params: dict[str, Any]) -> None:
        visit = self.visit
        if method == "Network.requestWillBeSent":
            visit.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            visit.failed_requests.append(params.get("errorText", ""))
        elif method == "Runtime.exceptionThrown":
            visit.errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            visit.errors.append(json.dumps(params["args"])[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            visit.errors.append(params["entry"].get("text", ""))


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A fresh headless browser (own profile, no background traffic) with one page, listening."""
    # the profile may still be written to by a renderer as the browser exits: cleanup is best
    # effort, the browser's process group is ended first
    with tempfile.TemporaryDirectory(
        prefix="mendersim-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            address = _browser_address(process)
            socket = websocket.create_connection(address, timeout=30, suppress_origin=True)
            try:
                target = _call(socket, "Target.createTarget", url="about:blank")["targetId"]
                session = _call(socket, "Target.attachToTarget", targetId=target, flatten=True)
                page = Page(socket, session["sessionId"])
                for domain in ("Page", "Runtime", "Log", "Network"):
                    page.call(f"{domain}.enable")
                yield page
            finally:
                socket.close()
        finally:
            _end_group(process)


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM to the browser and its renderers (their own session), SIGKILL if they linger."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def open_file(page: Page, path: Path) -> None:
    """Load a local file and wait for its load event."""
    page.call("Page.navigate", url=path.resolve().as_uri())
    page.wait_for("Page.loadEventFired", timeout_s=60)


def _browser_address(process: subprocess.Popen) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        found = LISTENING.search(line)
        if found:  # the rest is read away, so a full pipe never stalls the browser
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return found.group(1)
    raise RuntimeError(f"chromium exited before listening: {''.join(seen)[-2000:]}")


def _call(socket: websocket.WebSocket, method: str, **params: Any) -> dict[str, Any]:
    """A browser-level command (no session), answered before any event is sent."""
    socket.send(json.dumps({"id": 1, "method": method, "params": params}))
    while True:
        answer = json.loads(socket.recv())
        if answer.get("id") == 1:
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            return answer["result"]
