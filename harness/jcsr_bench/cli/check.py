"""``jcsr-bench check PLUGIN_OR_INSTANCE``: the conformance kit without pytest (exit 0/1)."""

from __future__ import annotations

import argparse
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("check", parents=[common],
                       help="run the plugin conformance kit on a plugin's components or on "
                       "one registry instance or type (exit 0 conforms, 1 does not)")
    p.add_argument("name", metavar="PLUGIN_OR_INSTANCE",
                   help="a plugin (its name or distribution, as `jcsr-bench plugins` shows), "
                   "or a codec, SR model, dataset or metric instance or type")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.testing import check_named

    results = check_named(options.registry(args), args.name)
    for kind, name, problem in results:
        print(f"{'ok' if not problem else 'FAIL':4}  {kind} {name}"
              + (f": {problem}" if problem else ""))
    failed = sum(bool(problem) for _, _, problem in results)
    print(f"{len(results) - failed} of {len(results)} component(s) conform")
    return 1 if failed else 0
