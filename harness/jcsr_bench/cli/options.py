"""Option parsing shared by the subcommands: comma lists, ``--qualities``, registries."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def split_list(value: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; ``None`` or empty -> ``None`` (the default)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def qualities(value: str | None) -> list[int | float | str] | None:
    """``--qualities`` (see :mod:`jcsr_bench.run.qualities`); ``None`` = each codec's ladder."""
    from jcsr_bench.run.qualities import normalise

    return normalise(value, "--qualities", sys.stderr)


def registry(args: argparse.Namespace) -> Any:
    """The shipped registry plus every ``--registry FILE`` (and the project-local one)."""
    from jcsr_bench.plugin.registry import load_registry

    return load_registry(args.registry or ())


def non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number
