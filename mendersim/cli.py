"""The `mendersim` command: each subcommand is registered by the package that owns it."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mendersim import __version__
from mendersim.errors import ERROR_PREFIX, MendersimError

SKIP_PATCH = "LOCUST_SKIP_MONKEY_PATCH"

# Modules exposing `register(subparsers)`; each adds its subcommands with a `func` default
# taking the parsed namespace and returning an exit code.
COMMAND_MODULES = (
    "mendersim.fleet.commands",
    "mendersim.server.commands",
    "mendersim.artifact.commands",
    "mendersim.mender_api.preauthorize",
    "mendersim.harness.config.optionlist",
    "mendersim.report.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mendersim", description="Mender OTA fleet simulator and load-testing harness."
    )
    parser.add_argument("--version", action="version", version=f"mendersim {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # No subcommand runs on gevent, yet some import Locust after `requests` imported ssl, and
    # Locust's late patching then recurses in ssl. Skip it while a subcommand runs; restore the
    # setting after, so no Locust process an in-process caller starts later inherits it.
    previous = os.environ.get(SKIP_PATCH)
    os.environ[SKIP_PATCH] = "1"
    try:
        return _run(argv)
    finally:
        if previous is None:
            os.environ.pop(SKIP_PATCH, None)
        else:
            os.environ[SKIP_PATCH] = previous


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's shutdown
        return code
    except MendersimError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mendersim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `mendersim fleet DB | head`: the reader left; later writes to stdout go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("mendersim: error: standard output closed by its reader", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
