"""``jcsr-bench baseline save``: a run's results as a CI baseline (JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("baseline", parents=[common],
                       help="save a run's results as a CI baseline (JSON)")
    p.add_argument("action", choices=["save"])
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--out", required=True, metavar="FILE.json", help="baseline file to write")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.ci.commands import baseline_command

    return baseline_command(Path(args.results), Path(args.out))
