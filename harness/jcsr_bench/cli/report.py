"""``jcsr-bench report``: the self-contained HTML report of a results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", parents=[common],
                       help="write the self-contained HTML report of stored results")
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--out", metavar="FILE.html",
                   help="where to write it (default: <results>/report.html)")
    p.add_argument("--images", metavar="NAMES",
                   help="images of the comparison view, comma-separated NAME or DATASET/NAME, "
                   "or 'all' (default: in store order, about 3.5 MB of images)")
    p.add_argument("--device", default="auto", help="where SR recomputes the shown images "
                   "(default auto)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.kit.devices import resolve_device
    from jcsr_bench.kit.errors import DataError
    from jcsr_bench.report.coverage import load_view
    from jcsr_bench.report.outputs import RECORD, read_record, write_html
    from jcsr_bench.results.store import DB_NAME
    from jcsr_bench.run.recompute import Recompute

    results = Path(args.results)
    if not (results / DB_NAME).is_file():
        raise DataError(f"no results store at {results / DB_NAME}: run `jcsr-bench run "
                        f"--output {results}` first, or point --results at a run's folder")
    registry = options.registry(args)
    where = resolve_device(args.device)

    def warn(message: str) -> None:
        print(f"jcsr-bench report: warning: {message}", file=sys.stderr)

    view = load_view(results)
    # the folder's exports, as its latest rendering listed them (outputs.json)
    exports = [results / f for f in read_record(results).get("files", [])
               if (results / f).is_file()]
    target = Path(args.out) if args.out else None
    path = write_html(results, view, exports + [results / RECORD], lambda d, n, runs, meta:
                      Recompute(registry, d, n, runs, meta, where, warn), sys.stdout,
                      target=target, images=options.split_list(args.images))
    print(path)
    return 0
