"""What a finished run leaves behind: exports, leaderboard, plots, and the printed summary.

The exports are re-rendered only when the stored cells they were made from changed
(``outputs.json`` fingerprint), so re-running a finished matrix stays cheap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from jcsr_bench import __version__
from jcsr_bench.errors import JcsrError
from jcsr_bench.store import Store

if TYPE_CHECKING:
    from jcsr_bench.engine import RunSummary


def write_outputs(output: Path, db_path: Path, cells: list, anchor: tuple[str, str] | None,
                   stream: TextIO, fingerprint: str) -> list[Path]:
    """Exports (JSON per combination, CSV), the leaderboard and RD plots.

    Skipped when the outputs on disk were written from exactly these stored cells
    (``outputs.json`` fingerprint), so a re-run of a finished matrix stays cheap.
    """
    import json

    record = output / "outputs.json"
    try:
        previous = json.loads(record.read_text())
        files = [output / f for f in previous["files"]]
        if previous["fingerprint"] == fingerprint and all(f.is_file() for f in files):
            return files
    except (OSError, ValueError, KeyError, TypeError):
        pass
    files = render_outputs(output, db_path, cells, anchor, stream)
    record.write_text(json.dumps({"fingerprint": fingerprint, "files": [
        str(f.relative_to(output)) for f in files]}, indent=1))
    return files


def render_outputs(output: Path, db_path: Path, cells: list, anchor: tuple[str, str] | None,
                    stream: TextIO) -> list[Path]:
    from jcsr_bench.exports import write_compressai_json, write_csv
    from jcsr_bench.store import curves_from_rows, load_rows

    with Store(db_path, readonly=True) as store:
        meta = store.meta()
    rows = load_rows(db_path, cells=cells)
    curves = curves_from_rows(rows, meta)
    files = [write_csv(rows, output / "results.csv")]
    files += write_compressai_json(curves, output / "json", f"jcsr-bench {__version__}")
    if not curves:
        return files
    labels = {c.label for c in curves}
    if anchor is not None and f"{anchor[0]}+{anchor[1]}" not in labels:
        print(f"note: anchor {anchor[0]}+{anchor[1]} is not in this run's results; the "
              "leaderboard uses the first combination", file=stream)
        anchor = None
    try:
        from jcsr_bench.report.leaderboard import render_leaderboard

        text = render_leaderboard(curves, meta, anchor=anchor)
        path = output / "leaderboard.md"
        path.write_text(text)
        files.append(path)
    except JcsrError as exc:
        print(f"note: no leaderboard: {exc}", file=stream)
    try:
        from jcsr_bench.report.plots import plot_reports

        files += plot_reports(curves, output / "plots", anchor=anchor)
    except JcsrError as exc:
        print(f"note: no RD plots: {exc}", file=stream)
    return files


def fmt_range(values: list[float | None], fmt: str) -> str:
    got = [v for v in values if v is not None and math.isfinite(v)]
    if not got:
        return "n/a"
    lo, hi = min(got), max(got)
    return format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"


def print_summary(output: Path, cells: list, summary: RunSummary, stream: TextIO,
                   stopped: bool) -> None:
    from tabulate import tabulate

    from jcsr_bench.store import load_curves

    curves, _ = load_curves(summary.db_path, cells=cells)
    rows = []
    for c in curves:
        col = {m: [p.values.get(m) for p in c.points] for m in ("bpp", "psnr-rgb",
                                                             "ms-ssim-rgb", "sr_s")}
        rows.append([c.dataset, c.label, len(c.points), max((p.images for p in c.points),
                                                            default=0),
                     fmt_range(col["bpp"], ".4f"), fmt_range(col["psnr-rgb"], ".2f"),
                     fmt_range(col["ms-ssim-rgb"], ".4f")])
    if rows:
        print(tabulate(rows, headers=["dataset", "codec+sr", "points", "images", "bpp",
                                      "psnr-rgb (dB)", "ms-ssim-rgb"]), file=stream)
    if summary.skipped:
        print("\nskipped (not evaluated):", file=stream)
        grouped: dict[tuple[str, str], list[str]] = {}
        for s in summary.skipped:
            grouped.setdefault((s.kind, s.name), []).append(s.reason)
        for (kind, name), reasons in grouped.items():
            if len(reasons) == 1:
                print(f"  {kind} {name}: {reasons[0]}", file=stream)
                continue
            print(f"  {kind} {name}:", file=stream)
            for reason in reasons:
                print(f"    - {reason}", file=stream)
    if summary.failed:
        print(f"\nfailed cells ({len(summary.failed)}):", file=stream)
        for f in summary.failed[:20]:
            print(f"  {f.dataset}/{f.image} {f.codec} q={f.quality} {f.sr}: {f.error}",
                  file=stream)
        if len(summary.failed) > 20:
            print(f"  ... and {len(summary.failed) - 20} more (see results.csv)", file=stream)
    print(f"\n{summary.cells} cells: {summary.computed} computed, {summary.cached} already "
          f"stored, {len(summary.failed)} failed; codec runs {summary.codec_runs} "
          f"(+{summary.codec_cache_hits} from cache); {summary.elapsed_s:.1f} s"
          + ("; stopped at the first failure (--fail-fast)" if stopped else ""), file=stream)
    print(f"results: {output}", file=stream)
