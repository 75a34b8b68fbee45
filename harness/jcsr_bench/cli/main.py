"""The ``jcsr-bench`` command line: the parser, and the error handling of every command.

One module per subcommand (``jcsr_bench.cli.<command>``) adds its arguments and handles
them; each imports its implementation inside its handler, so ``--help``, ``plugins`` and
``list`` never import torch.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import TextIO

from jcsr_bench.cli import (
    baseline,
    check,
    compare,
    history,
    leaderboard,
    listing,
    plugins,
    report,
    reproduce,
    run,
    train_codec,
    train_sr,
    visual,
)
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.version import __version__


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """One line per warning, without Python's echo of the source line that warned.

    jcsr-bench's own warnings are complete sentences; others keep where they came from.
    """
    text = str(message).removeprefix("jcsr-bench: ")
    if not category.__module__.startswith("jcsr_bench"):
        text += f" ({category.__name__} from {filename}:{lineno})"
    print(f"jcsr-bench: warning: {text}", file=file or sys.stderr)


#: The subcommands, in ``--help`` order.
COMMANDS = (plugins, listing, run, leaderboard, report, visual, train_sr, train_codec, reproduce,
            baseline, compare, history, check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jcsr-bench",
        description="Benchmark joint learned image compression and super-resolution: "
        "HR -> x4 down -> codec -> SR -> score (bits, PSNR, MS-SSIM), BD leaderboards.",
    )
    parser.add_argument("--version", action="version", version=f"jcsr-bench {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", action="append", metavar="FILE",
                        help="extra registry YAML on top of the shipped one (repeatable)")
    common.add_argument("--offline", action="store_true",
                        help="never use the network (same as JCSR_BENCH_OFFLINE=1)")
    common.add_argument("--data-root", metavar="DIR",
                        help="folder holding datasets (same as JCSR_BENCH_DATA_ROOT)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub, common)
    return parser


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM (what schedulers and CI send) handled as Ctrl-C: the run records what it
    has, closes its store and writes its reports instead of dying mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if getattr(args, "offline", False):
        os.environ["JCSR_BENCH_OFFLINE"] = "1"
    if getattr(args, "data_root", None):
        os.environ["JCSR_BENCH_DATA_ROOT"] = args.data_root
    try:
        with warnings.catch_warnings(), _sigterm_as_sigint():
            warnings.showwarning = _show_warning
            return args.func(args)
    except JcsrError as exc:
        print(f"jcsr-bench: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # a full disk outside the places that name it
        from jcsr_bench.kit.disk import full_disk_error

        error = full_disk_error(exc)
        if error is None:
            raise
        print(f"jcsr-bench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jcsr-bench: interrupted; finished results are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
