"""``jcsr-bench leaderboard``: re-render from the store; print, or write atomically."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("leaderboard", parents=[common],
                       help="re-render the leaderboard from stored results")
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--anchor", help="codec+sr (default: the run's anchor)")
    p.add_argument("--method", choices=["pchip", "akima", "cubic"], default="pchip",
                   help="BD fit (default pchip, the JVET/VCEG Excel method)")
    p.add_argument("--bd-aggregate", choices=["curve", "per-image"],
                   help="BD of the mean curves, or mean/median of per-image BD-rates "
                   "(default: the run's, else curve)")
    p.add_argument("--rate", choices=["mean", "pooled"],
                   help="mean of per-image bpp, or total bits / total pixels (default: the "
                   "run's, else mean)")
    p.add_argument("--write", metavar="PATH", help="write here (default: print)")
    p.add_argument("--format", choices=["markdown", "latex"], default="markdown",
                   help="markdown (default), or latex: booktabs tables for a paper")
    p.add_argument("--pairs", action="append", metavar="TEST:ANCHOR",
                   help="paper-style table of one combination against another, e.g. "
                   "bmshj+esrgan-b2:bmshj+esrgan-b1 (repeatable)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.kit.atomic import atomic_write
    from jcsr_bench.report.coverage import load_view
    from jcsr_bench.report.leaderboard import leaderboard_from_store, parse_pairs, render_pairs

    results = Path(args.results)
    if args.format == "latex":
        text = _latex(results, args)
    elif args.pairs:
        view = load_view(results)
        text = render_pairs(view.curves, view.meta, parse_pairs(args.pairs), method=args.method)
    else:
        text = leaderboard_from_store(results, anchor=args.anchor, method=args.method,
                                      aggregate=args.bd_aggregate, rate=args.rate)
    if not args.write:
        print(text, end="")
    else:
        atomic_write(Path(args.write), text)
        print(f"wrote {args.write}")
    return 0


def _latex(results: Path, args: argparse.Namespace) -> str:
    from jcsr_bench.report.coverage import load_view
    from jcsr_bench.report.latex import render_latex, render_latex_pairs
    from jcsr_bench.report.leaderboard import parse_pairs

    view = load_view(results, None if args.pairs else args.anchor)
    if view.anchor is None:
        from jcsr_bench.kit.errors import JcsrError

        raise JcsrError("no results to render: the results store holds no curves")
    if args.pairs:
        return render_latex_pairs(view.curves, view.meta, parse_pairs(args.pairs),
                                  method=args.method)
    return render_latex(view.curves, view.meta, anchor=view.anchor.pair, method=args.method)
