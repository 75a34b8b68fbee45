"""``jcsr-bench history``: benchmark history over commits (SQLite, chart, table)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("history", parents=[common],
                       help="benchmark history over commits (SQLite, chart, table)")
    p.add_argument("action", choices=["add", "show"])
    p.add_argument("--results", default="jcsr-results", help="add: a run's output folder "
                   "(or a baseline file)")
    p.add_argument("--commit", metavar="SHA", help="add: the commit (default: the "
                   "baseline's, else git HEAD)")
    p.add_argument("--anchor", metavar="CODEC+SR", help="add: BD anchor (default: the "
                   "suite's)")
    p.add_argument("--store", default="jcsr-history.sqlite", metavar="FILE",
                   help="history store (default ./jcsr-history.sqlite)")
    p.add_argument("--metric", default="psnr-rgb", help="show: quality metric (default "
                   "psnr-rgb)")
    p.add_argument("--out", default="jcsr-history", metavar="DIR",
                   help="show: where the charts go (default ./jcsr-history)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.ci.commands import history_add_command, history_show_command

    if args.action == "add":
        return history_add_command(results=Path(args.results), store=Path(args.store),
                                   commit=args.commit, anchor=args.anchor)
    return history_show_command(store=Path(args.store), metric=args.metric,
                                out_dir=Path(args.out))
