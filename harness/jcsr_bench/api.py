"""Run a benchmark from Python: what ``jcsr-bench run`` does, for tests and notebooks.

A thin wrapper over :func:`jcsr_bench.run.engine.run` (its keyword arguments pass through)
that loads the registry, reads ``qualities`` as the command line does, holds the output
folder's lock, and returns the stored per-image rows with the run's summary. Importing
this module is cheap; the engine (torch) is imported when a benchmark runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO


@dataclass
class BenchmarkResult:
    """A finished (or dry) run: the engine's summary and what its output folder stores."""

    summary: Any  # jcsr_bench.run.engine.RunSummary

    @property
    def exit_code(self) -> int:
        """0: every cell ok; 1: some cell failed (``failed`` says which and why)."""
        return self.summary.exit_code

    @property
    def failed(self) -> list[Any]:
        return list(self.summary.failed)

    @property
    def output(self) -> Path:
        return Path(self.summary.output)

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Every per-image row stored in the output folder (a fresh folder: exactly this
        run's): ``dataset, image, codec, quality, sr, status, error`` and ``values``
        (metric -> number, ``None`` when n/a) with ``reasons`` (metric -> why n/a)."""
        if self.summary.dry_run:
            return []
        from jcsr_bench.results.store import load_rows

        return load_rows(self.summary.db_path)

    @cached_property
    def curves(self) -> list[Any]:
        """The rows averaged into RD curves (``jcsr_bench.results.curves.Curve``), as reported."""
        if self.summary.dry_run:
            return []
        from jcsr_bench.results.store import load_curves

        return load_curves(self.summary.db_path)[0]


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None or not isinstance(value, str):
        return None if value is None else list(value)
    return [v.strip() for v in value.split(",") if v.strip()]


def _load_registry(registry: Any) -> Any:
    from jcsr_bench.plugin.registry import Registry, load_registry

    if isinstance(registry, Registry):
        return registry
    if registry is None:
        return load_registry()
    if isinstance(registry, (str, os.PathLike)):
        return load_registry([registry])
    return load_registry(list(registry))


def run_benchmark(
    *,
    output: str | os.PathLike[str],
    datasets: str | Sequence[str] | None = None,
    codecs: str | Sequence[str] | None = None,
    srs: str | Sequence[str] | None = None,
    suite: str | None = None,
    qualities: str | Sequence[Any] | None = None,
    limit: int | None = None,
    device: str = "auto",
    registry: Any = None,
    wait: bool = False,
    progress: bool | None = False,
    stream: TextIO | None = None,
    **options: Any,
) -> BenchmarkResult:
    """Evaluate every dataset x codec x quality x SR cell into ``output`` and return the
    stored rows: ``jcsr-bench run`` in-process.

    Names are registry instances or plugin types, as on the command line (a list or a
    comma string). ``qualities`` is a list or a ``--qualities`` text ("1..8"); a
    repeated one runs once. ``registry``: a loaded ``Registry``, extra registry files,
    or None for the shipped one (plus ./jcsr-bench.yaml); plugins come from the current
    plugin manager, so ``jcsr_bench.testing.plugin_manager(my_plugin)`` puts yours in.
    Other keywords (``scale``, ``kernel``, ``metrics``, ``overwrite``, ``fail_fast``, ``dry_run``,
    ``train``, ``anchor``, ``sr_options``, ``cache_root``) go to ``engine.run``;
    ``progress=None`` shows bars when stderr is a terminal. The
    output folder is locked for the run (``wait``: wait for another run using it).
    """
    from jcsr_bench.run.output_lock import output_lock
    from jcsr_bench.run.preflight import check_output
    from jcsr_bench.run.qualities import normalise

    arguments = dict(registry=_load_registry(registry), suite=suite, datasets=_names(datasets),
                     codecs=_names(codecs), srs=_names(srs), limit=limit, device=device,
                     qualities=normalise(qualities, "qualities", sys.stderr),
                     output=Path(output), progress=progress, stream=stream or sys.stdout,
                     **options)
    check_output(Path(output), write=not options.get("dry_run"))  # before the lock creates it
    lock = (contextlib.nullcontext() if options.get("dry_run")
            else output_lock(Path(output), wait=wait, stream=sys.stderr))
    with lock:
        from jcsr_bench.run.engine import run

        return BenchmarkResult(run(**arguments))
