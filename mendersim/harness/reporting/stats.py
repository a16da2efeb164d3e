"""How exchanges and device events become statistics.

HTTP exchanges go to Locust's request statistics; device-level and harness figures (request
types DEVICE and HARNESS) go to `measures`, apart, so they never distort Locust's percentiles.
Every entry is named by protocol step or device event, never by device or URL, so statistics,
CSVs and InfluxDB series stay low-cardinality. `context["profile"]` carries the industry profile.
"""

from __future__ import annotations

from typing import Any

from mendersim.device import steps
from mendersim.harness.reporting import measures

# request_type of device-level events (not HTTP exchanges).
DEVICE = "DEVICE"
# request_type of figures about the generator itself and about scenarios.
HARNESS = "HARNESS"

# DEVICE entry names. response_time is milliseconds of real (not simulated) time, except
# DOWNLOAD_THROUGHPUT whose response_time is kB/s (1 kB = 1000 bytes) and response_length bytes.
TIME_TO_ACCEPTED = "time to accepted"
DEPLOYMENT_DURATION = "deployment duration"
DOWNLOAD_THROUGHPUT = "download throughput (kB/s)"
AUTH_NOT_ACCEPTED = "auth not accepted (401)"


def downtime(kind: str) -> str:
    """e.g. `install downtime`, `reboot downtime`."""
    return f"{kind} downtime"


def outcome(result: str) -> str:
    """e.g. `outcome:success`, `outcome:failure`, `outcome:already-installed`."""
    return f"outcome:{result}"


# HARNESS entry names.
SCHEDULER_LAG_P99 = "scheduler lag p99"  # one sample per worker report interval, in ms
ROLLOUT_DURATION = "rollout duration"  # creation of the deployment until every target is final


def failure_for(step: str, method: str, status: int) -> str | None:
    """The failure text for an HTTP answer, or None when the protocol expects it.

    Expected, so not failures: any 2xx; 401 on `auth` (the device is pending or rejected and
    retries, counted apart as AUTH_NOT_ACCEPTED); 404 on the v2 `POST deployments/next` (an
    open-source server, the device falls back to v1); 409 on a status report (the deployment
    was aborted, the device stops it). Everything else, including 429 and 5xx, is a failure
    named by its code only, so failures group by kind.
    """
    if 200 <= status < 300:
        return None
    if status == 401 and step == steps.AUTH:
        return None
    if status == 404 and step == steps.NEXT and method == "POST":
        return None
    if status == 409 and step.startswith(steps.status("")):
        return None
    return f"HTTP {status}"


class HttpFailure(Exception):
    """What Locust's failure table shows for an unexpected answer: the code, never the URL."""


def fire(
    environment: Any,
    request_type: str,
    name: str,
    response_time_ms: float,
    response_length: int = 0,
    exception: BaseException | None = None,
    profile: str = "",
) -> None:
    """One HTTP exchange in Locust's statistics (and every listener of `events.request`)."""
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=response_time_ms,
        response_length=response_length,
        exception=exception,
        context={"profile": profile} if profile else {},
        response=None,
        url=None,
        start_time=None,
    )


def measure(
    environment: Any,
    request_type: str,
    name: str,
    value: float,
    length: int = 0,
    profile: str = "",
) -> None:
    """One DEVICE or HARNESS figure: to the measures, never to Locust's request statistics."""
    measures.of(environment).record(request_type, name, value, length, profile)
