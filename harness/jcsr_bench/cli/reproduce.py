"""``jcsr-bench reproduce``: the paper's baseline-2-over-baseline-1 experiment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("reproduce", parents=[common],
                       help="the paper's B2-over-B1 experiment (small budget runs offline)")
    p.add_argument("--codec", default="jpeg",
                   help="codec instance (default jpeg); bmshj-samples trains a "
                   "bmshj2018-hyperprior codec on the training split first")
    p.add_argument("--budget", choices=["toy", "small", "full"], default="small")
    p.add_argument("--seeds", type=int, help="number of seeds (default 3 on small)")
    p.add_argument("--device", default="auto")
    p.add_argument("--output", default="leaderboards", help="where the table and plot go")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.experiments.reproduce import reproduce

    result = reproduce(
        options.registry(args),
        codec=args.codec,
        budget=args.budget,
        seeds=args.seeds,
        device=args.device,
        output=Path(args.output),
    )
    print(result.table.read_text(), end="")
    return 0
