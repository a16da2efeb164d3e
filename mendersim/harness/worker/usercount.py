"""Locust's count of running users without walking every user, when there is one user class.

Locust 2.47 computes `Runner.user_classes_count` by walking every user greenlet, and a process
reads it about five times for each spawn message (one a second while the master ramps up): at
500,000 users a walk takes about 0.2 s, so counting alone held a worker's core and both workers
of a 1,000,000-device run fell behind while spawning. With one user class, every greenlet in
`user_greenlets` is a user of that class, and the count is the group's length.
"""

from __future__ import annotations

from typing import Any


def count_by_group_length(runner: Any) -> None:
    """Give `runner` the constant-time count (a runner with several user classes keeps
    Locust's)."""
    if len(runner.user_classes) != 1 or getattr(runner, "_counts_by_length", False):
        return
    name = runner.user_classes[0].__name__
    base = type(runner)

    def user_classes_count(self: Any) -> dict[str, int]:
        return {name: len(self.user_greenlets)}

    runner.__class__ = type(
        base.__name__,
        (base,),
        {"user_classes_count": property(user_classes_count), "_counts_by_length": True},
    )
