"""The real client's retry schedule (http::ExponentialBackoff in the C++ client).

Each interval is used three times, then doubled, never beyond the maximum; once the maximum has
been used three times the schedule is exhausted and the caller falls back to its normal interval.
"""

from __future__ import annotations

SMALLEST_INTERVAL = 60.0  # seconds: the client's minimum backoff


def backoff_interval(attempt: int, max_interval: float) -> float | None:
    """The wait before retry number `attempt` (1-based), or None once the schedule is exhausted.

    When the maximum is below one minute the schedule becomes fixed at the maximum, as the
    client does for short retry intervals.
    """
    smallest = min(SMALLEST_INTERVAL, max_interval)
    current = smallest
    count = 3
    while count < attempt:
        doubled = min(current * 2, max_interval)
        if doubled == current:
            return None
        current = doubled
        count += 3
    return current
