"""`mendersim report RUN_DIR`: rebuild the run report from what the run recorded."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

SKIP_PATCH = "LOCUST_SKIP_MONKEY_PATCH"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild mendersim-report.html from a run folder (run.json, timeline.jsonl)"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run's folder")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    # The figures use Locust's percentile code. Importing Locust patches for gevent unless told
    # not to, and by now `requests` (another subcommand's module) has imported ssl, which that
    # late patching recurses in. Building a report needs no gevent: skip the patching, but only
    # for this import, so nothing this process starts later inherits the setting.
    previous = os.environ.get(SKIP_PATCH)
    os.environ[SKIP_PATCH] = "1"
    try:
        from mendersim.report.html import write_report
    finally:
        if previous is None:
            del os.environ[SKIP_PATCH]
        else:
            os.environ[SKIP_PATCH] = previous

    print(write_report(args.run_dir))
    return 0
