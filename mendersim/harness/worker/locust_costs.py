"""Two costs of Locust 2.47's that grow with a large run, made constant in a simulating process.

- `Runner.user_classes_count` walks every user greenlet (0.19 s at 500,000 users), and a
  worker reads it about five times for each spawn message (one a second while the master ramps
  up). With one user class, every greenlet in `user_greenlets` is a user of that class, so the
  count is the group's length.
- For each spawn message a worker rebuilds Locust's whole argument parser once per option the
  master sent (`argument_parser.default_args_dict()` inside a loop over the options), about a
  second of blocked hub per message with the harness's hundred options. The defaults do not
  change within a process, so they are computed once.
"""

from __future__ import annotations

import functools
from typing import Any

from locust import argument_parser


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


def default_args_once() -> None:
    """Compute Locust's default options once per process (read-only: callers test keys)."""
    current = argument_parser.default_args_dict
    if not hasattr(current, "cache_info"):  # not cached yet
        argument_parser.default_args_dict = functools.cache(current)


def apply(runner: Any) -> None:
    count_by_group_length(runner)
    default_args_once()
