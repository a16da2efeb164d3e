"""`mendersim report RUN_DIR`: rebuild the run report from what the run recorded."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild mendersim-report.html from a run folder (run.json, timeline.jsonl)"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run's folder")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from mendersim.report.html import write_report  # the command skips gevent patching

    print(write_report(args.run_dir))
    return 0
