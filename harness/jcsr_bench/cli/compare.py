"""``jcsr-bench compare``: judge results against a baseline (exit 0 / 1 / 3)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("compare", parents=[common],
                       help="compare results with a baseline: exit 0 pass, 1 regression, "
                       "3 incomparable")
    p.add_argument("baseline", help="baseline JSON file (or a results folder)")
    p.add_argument("current", nargs="?", help="results folder or baseline file (or --run)")
    p.add_argument("--run", metavar="SUITE", help="run this suite first and compare its results")
    p.add_argument("--output", metavar="DIR", help="where --run writes (default: a temporary "
                   "folder)")
    p.add_argument("--device", default="cpu", help="device for --run (default cpu: "
                   "deterministic)")
    p.add_argument("--max-bd-rate", type=options.non_negative, metavar="PP",
                   help="largest accepted BD-rate increase, percentage points (default 0.5)")
    p.add_argument("--max-quality-drop", type=options.non_negative, metavar="DB",
                   help="largest accepted BD-quality drop, metric units (default 0.02)")
    p.add_argument("--exact", action="store_true",
                   help="any change of the outputs fails (when the environments match)")
    p.add_argument("--fail-on-time", type=options.non_negative, metavar="FACTOR",
                   help="fail when a timing is FACTOR times slower (default: warn only)")
    p.add_argument("--method", choices=["pchip", "akima", "cubic"], default="pchip",
                   help="BD fit (default pchip)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown report here")
    p.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one case per "
                   "dataset x combination x metric)")
    p.add_argument("--plots", metavar="DIR", help="write baseline-vs-current RD overlays of "
                   "every changed combination")
    p.add_argument("--update-baseline", action="store_true",
                   help="write CURRENT as the new baseline (explicit, atomic)")
    p.add_argument("--allow-empty-baseline", action="store_true",
                   help="accept a baseline without combinations (default: exit 3, it judges "
                   "nothing)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.ci.commands import compare_command

    return compare_command(
        baseline=Path(args.baseline),
        current=Path(args.current) if args.current else None,
        run=args.run,
        output=Path(args.output) if args.output else None,
        registry_files=args.registry or (),
        max_bd_rate=args.max_bd_rate,
        max_quality_drop=args.max_quality_drop,
        exact=args.exact,
        fail_on_time=args.fail_on_time,
        method=args.method,
        seed=args.seed,
        markdown=Path(args.markdown) if args.markdown else None,
        json_out=Path(args.json) if args.json else None,
        junit=Path(args.junit) if args.junit else None,
        plots=Path(args.plots) if args.plots else None,
        update_baseline=args.update_baseline,
        device=args.device,
        allow_empty_baseline=args.allow_empty_baseline,
    )
