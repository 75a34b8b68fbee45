"""The regression-tracking commands: ``baseline save``, ``compare``, ``history``.

Glue between the command line and :mod:`.baseline`, :mod:`.compare`, :mod:`.history`
and the reports: reading inputs, optionally running a suite first, writing the
Markdown / JSON / JUnit / plot outputs, choosing the exit status. Nothing here writes a
baseline unless asked (``--update-baseline``), and then atomically.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from jcsr_bench.ci.baseline import dumps, load_baseline, save_baseline
from jcsr_bench.kit.errors import DataError, JcsrError

EXIT_BASELINE_MISSING = 3

__all__ = ["baseline_command", "compare_command", "history_add_command",
           "history_show_command", "run_suite"]


def baseline_command(results: Path, out: Path, stream: TextIO | None = None) -> int:
    data = save_baseline(results, out)
    cells = sum(len(p["images"]) for c in data["combinations"].values() for p in c["points"])
    print(f"baseline: {len(data['combinations'])} combination(s), {cells} cell(s) -> {out}",
          file=stream or sys.stdout)
    return 0


def run_suite(registry: Any, suite: str, output: Path, *, device: str = "cpu",
              stream: TextIO | None = None) -> int:
    """Run ``suite`` into ``output`` in-process (the engine's keyword API)."""
    from jcsr_bench.run.engine import run

    summary = run(registry=registry, suite=suite, output=Path(output), device=device,
                  progress=False, stream=stream or sys.stderr)
    return summary.exit_code


def _suite_tolerances(registry_files: Sequence[str], *datas: dict[str, Any]
                      ) -> tuple[dict[str, Any], str]:
    """The ``tolerances`` of the suite the runs came from (current run's first)."""
    names = [(d.get("run") or {}).get("suite") for d in datas]
    name = next((n for n in names if n), None)
    if not name:
        return {}, ""
    from jcsr_bench.plugin.registry import load_registry

    suite = load_registry(registry_files).suites.get(name)
    if suite is None:
        return {}, ""
    return suite.tolerances, f"{suite.file}:{suite.line}: suites.{name}.tolerances"


def compare_command(*, baseline: Path, current: Path | None, run: str | None,
                    output: Path | None, registry_files: Sequence[str] = (),
                    max_bd_rate: float | None = None, max_quality_drop: float | None = None,
                    exact: bool = False, fail_on_time: float | None = None,
                    method: str = "pchip", seed: int = 0, markdown: Path | None = None,
                    json_out: Path | None = None, junit: Path | None = None,
                    plots: Path | None = None, update_baseline: bool = False,
                    device: str = "cpu", allow_empty_baseline: bool = False,
                    stream: TextIO | None = None) -> int:
    """``jcsr-bench compare``; returns the exit status (0, 1, 3)."""
    from jcsr_bench.ci.compare import Tolerances, compare, tolerances_for
    from jcsr_bench.ci.compare_report import render_compare
    from jcsr_bench.ci.junit import render_junit
    from jcsr_bench.kit.atomic import atomic_write

    stream = stream or sys.stdout
    if (current is None) == (run is None):
        raise JcsrError("give CURRENT (a results folder or baseline file) or --run SUITE, "
                        "not both and not neither")
    if update_baseline and Path(baseline).suffix != ".json":
        raise JcsrError(f"--update-baseline writes a baseline JSON file; {baseline} is not "
                        "a .json path")
    try:
        base = None if update_baseline and not Path(baseline).exists() else \
            load_baseline(baseline)
    except DataError as exc:
        if Path(baseline).exists():
            raise
        print(f"jcsr-bench: {exc}", file=sys.stderr)
        return EXIT_BASELINE_MISSING
    if run is not None:
        from jcsr_bench.plugin.registry import load_registry

        current = Path(output) if output else Path(tempfile.mkdtemp(prefix="jcsr-compare-"))
        print(f"running suite {run} into {current}", file=sys.stderr)
        try:
            run_suite(load_registry(registry_files), run, current, device=device)
        except BaseException:
            if not output:  # a failed run's temporary folder holds nothing to keep
                shutil.rmtree(current, ignore_errors=True)
            raise
    cur = load_baseline(current)
    if base is None:  # --update-baseline with no baseline yet: explicit creation
        atomic_write(Path(baseline), dumps(cur))
        print(f"baseline created: {baseline} (nothing compared)", file=sys.stderr)
        return 0
    suite_tol, where = _suite_tolerances(registry_files, cur, base)
    tolerances_for("", Tolerances(), suite_tol, {}, where or "tolerances")  # validate early
    comparison = compare(base, cur, suite_tolerances=suite_tol, method=method, seed=seed,
                         allow_empty=allow_empty_baseline,
                         cli_tolerances={"max_bd_rate": max_bd_rate,
                                         "max_quality_drop": max_quality_drop,
                                         "exact": exact or None,
                                         "fail_on_time": fail_on_time})
    print(render_compare(comparison, markdown=False), end="", file=stream)
    if markdown:
        atomic_write(Path(markdown), render_compare(comparison))
    if json_out:
        atomic_write(Path(json_out), json.dumps(comparison.to_dict(), indent=1, sort_keys=True,
                                                default=str) + "\n")
    if junit:
        atomic_write(Path(junit), render_junit(comparison))
    if plots:
        from jcsr_bench.ci.plots import plot_overlays

        files = plot_overlays(comparison, plots)
        print(f"{len(files) // 2} overlay plot(s) in {plots}", file=sys.stderr)
    if update_baseline:
        atomic_write(Path(baseline), dumps(cur))
        print(f"baseline updated: {baseline} (explicit --update-baseline)", file=sys.stderr)
    return comparison.exit_code


def history_add_command(*, results: Path, store: Path, commit: str | None,
                        anchor: str | None, stream: TextIO | None = None) -> int:
    from jcsr_bench.ci.history import add_run

    sha, count = add_run(results, store=store, commit=commit, anchor=anchor)
    print(f"history: {sha[:12]} added to {store} ({count} entries)", file=stream or sys.stdout)
    return 0


def history_show_command(*, store: Path, metric: str, out_dir: Path,
                         stream: TextIO | None = None) -> int:
    from jcsr_bench.ci.history import show

    text, files = show(store, metric=metric, out_dir=out_dir)
    stream = stream or sys.stdout
    print(text, file=stream)
    for path in files:
        print(f"chart: {path}", file=stream)
    return 0
