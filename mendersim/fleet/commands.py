"""CLI subcommands of the fleet package: `seed` and `fleet`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from mendersim.errors import ConfigError
from mendersim.fleet.export import export
from mendersim.fleet.profiles import load_fleet
from mendersim.fleet.seed import seed_store
from mendersim.fleet.store import SeedStore
from mendersim.fleet.summary import format_summary
from mendersim.logsetup import configure_from


def register(subparsers: argparse._SubParsersAction) -> None:
    seed = subparsers.add_parser(
        "seed",
        help="generate (or complete) a fleet's seed store",
        description="Generate every device of a fleet config into a SQLite seed store: "
        "identities, keys (on every core), inventory. Re-running completes an interrupted "
        "seed and adds devices to grown groups.",
    )
    seed.add_argument("fleet", help="fleet config (YAML), e.g. profiles/fleets/demo.yaml")
    seed.add_argument("--db", required=True, help="seed store file to create or complete")
    seed.add_argument(
        "--workers", type=int, default=None, help="key-generating processes (default: all cores)"
    )
    seed.add_argument("--log-file", help="log file (default: the fleet config's logging.file)")
    seed.add_argument("--log-level", help="log file level (default: the fleet config's)")
    seed.add_argument(
        "--quiet", action="store_true", help="no progress bar and no closing summary line"
    )
    seed.set_defaults(func=run_seed)

    fleet = subparsers.add_parser(
        "fleet",
        help="summarise a seed store",
        description="Counts of a seed store's devices by profile, key type, status and "
        "installed artifact, and of its deployment history by result; `fleet export DB` writes "
        "device id, profile, device type, key type, identity data and public key of every "
        "device (never the private key).",
    )
    fleet.add_argument(
        "target",
        nargs="+",
        metavar="[export] DB",
        help="seed store file; `export DB` writes every device's identity and public key",
    )
    fleet.add_argument("--json", action="store_true", help="print the counts as JSON")
    fleet.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="export: CSV or JSON lines"
    )
    fleet.add_argument("-o", "--output", default="-", help="export: output file (default stdout)")
    fleet.set_defaults(func=run_fleet)


@contextmanager
def _private_files() -> Iterator[None]:
    """Files made meanwhile (store, WAL, shared memory) are readable by their owner only."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def run_seed(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", f"must be at least 1, not {args.workers}")
    fleet = load_fleet(args.fleet)
    configure_from(fleet.document["logging"], file=args.log_file, level=args.log_level)
    with _private_files():
        result = seed_store(fleet, args.db, workers=args.workers, progress=not args.quiet)
    if result.settings_changed:
        print(
            f"{args.db}: only run-time settings changed ({', '.join(result.settings_changed)}): "
            "the store follows them, no device was regenerated; a run's --mendersim-tenant-token "
            "or --host overrides them without seeding"
        )
    if not args.quiet:
        print(
            f"{args.db}: {result.total} devices ({result.added} added, "
            f"{result.already} already stored) in {result.seconds:.1f} s"
        )
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    if args.target[0] == "export":
        if len(args.target) != 2:
            raise ConfigError("fleet export", "give exactly one seed store: fleet export DB")
        return _run_export(args.target[1], args.format, args.output)
    if len(args.target) != 1:
        raise ConfigError("fleet", f"one seed store expected, not {' '.join(args.target)}")
    with SeedStore.open(args.target[0]) as store:
        summary = store.summary()
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _run_export(db: str, fmt: str, output: str) -> int:
    with SeedStore.open(db) as store:
        if output == "-":
            export(store, sys.stdout, fmt)
            return 0
        try:
            with open(output, "w", encoding="utf-8", newline="") as out:
                count = export(store, out, fmt)
        except OSError as exc:
            raise ConfigError("--output", f"{output}: {exc.strerror or exc}") from None
    print(f"{output}: {count} devices", file=sys.stderr)
    return 0
