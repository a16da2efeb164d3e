"""`mendersim options`: every option the fleet locustfile adds to Locust, with its environment
variable and default. `locust -f locustfiles/fleet.py --help` cannot list them: Locust prints its
help before it loads the locustfile that registers them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OptionDoc:
    option: str
    env_var: str
    default: str
    secret: bool
    web_ui: bool
    help: str


class _Collector:
    """Takes the `add_argument` calls the locustfile's set-up makes on Locust's parser."""

    def __init__(self) -> None:
        self.options: list[OptionDoc] = []

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        default = kwargs.get("default")
        self.options.append(
            OptionDoc(
                option=names[0],
                env_var=kwargs.get("env_var", ""),
                default="" if default in (None, "") else str(default),
                secret=bool(kwargs.get("is_secret")),
                web_ui=kwargs.get("include_in_web_ui", True),
                help=str(kwargs.get("help", "")),
            )
        )

    def add_argument_group(self, *_: Any, **__: Any) -> _Collector:
        return self


def locustfile_options() -> list[OptionDoc]:
    """The options of locustfiles/fleet.py, in the order it registers them."""
    from mendersim.harness.config import options
    from mendersim.harness.reporting import influx, thresholds

    collector = _Collector()
    for add in (options.add_arguments, influx.add_options, thresholds.add_options):
        add(collector)
    return collector.options


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "options",
        help="list the options of the fleet locustfile",
        description="Every option locustfiles/fleet.py adds to Locust, with its environment "
        "variable and default (also locust.conf keys, without the leading dashes).",
    )
    command.add_argument("--json", action="store_true", help="print the list as JSON")
    command.set_defaults(func=run_options)


def run_options(args: argparse.Namespace) -> int:
    """Listed by a fresh interpreter: the options' modules import Locust, which must patch the
    standard library (gevent) before anything imports `ssl`, as the `mendersim` command has."""
    command = [sys.executable, "-m", __name__] + (["--json"] if args.json else [])
    return subprocess.run(command, check=False).returncode


def print_options(as_json: bool) -> int:
    documented = locustfile_options()
    if as_json:
        print(json.dumps([asdict(doc) for doc in documented], indent=2))
        return 0
    for doc in documented:
        notes = [f"env {doc.env_var}" if doc.env_var else "", f"default {doc.default or '(none)'}"]
        notes += ["secret"] if doc.secret else []
        notes += [] if doc.web_ui else ["fixed at start-up (not in the web UI)"]
        print(f"{doc.option}  [{', '.join(n for n in notes if n)}]")
        print(textwrap.indent(textwrap.fill(doc.help, 92), "    "))
    return 0


if __name__ == "__main__":
    import locust  # noqa: F401  (patches the standard library first)

    sys.exit(print_options("--json" in sys.argv[1:]))
