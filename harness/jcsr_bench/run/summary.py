"""What a run did (:class:`RunSummary`) and what it prints: its own cells' summary, and
what the folder's reports cover.

The reports themselves (exports, leaderboard, plots) are written by
:func:`jcsr_bench.report.outputs.write_reports`, from the whole store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jcsr_bench.results.aggregate import DOMINANCE_FACTOR, DOMINANCE_SHARE, dominant_images
from jcsr_bench.results.labels import reported_metrics, spec
from jcsr_bench.results.store import load_curves
from jcsr_bench.run.requirements import Skipped, group_remedies, not_evaluated_line


@dataclass
class Failure:
    dataset: str
    image: str
    codec: str
    quality: Any
    sr: str
    error: str


@dataclass
class RunSummary:
    """What ``run`` did; ``exit_code`` is the CLI's (0 ok, 1 some cell failed)."""

    exit_code: int
    output: Path
    db_path: Path
    cells: int = 0  # cells in the matrix
    computed: int = 0  # cells evaluated by this run
    cached: int = 0  # cells already in the store
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    codec_runs: int = 0  # encode + decode calls made
    codec_cache_hits: int = 0  # codec outputs served from the disk cache
    elapsed_s: float = 0.0
    files: list[Path] = field(default_factory=list)
    reports: str = ""  # what the folder's reports cover (all stored results)
    dry_run: bool = False
    execution: dict[str, Any] = field(default_factory=dict)  # executor, workers, threads
    #: how the leaderboard aggregates (``bd_aggregate``: curve | per-image, ``rate``)
    reporting: dict[str, str] = field(default_factory=dict)



NOT_AVAILABLE = "n/a [1]"
NOT_AVAILABLE_NOTE = ("[1] n/a: no value at these points (a metric not applicable, e.g. "
                      "an image too small, or failed cells); leaderboard.md names each reason")


def fmt_range(values: list[float | None], fmt: str) -> str:
    """The range of a column; an infinite value (PSNR of an exact reconstruction) is shown
    as ``inf`` with its reason, an absent one as ``n/a`` with a marker to the note."""
    got = [v for v in values if v is not None and math.isfinite(v)]
    infinite = any(v is not None and math.isinf(v) and v > 0 for v in values)
    if not got:
        return "inf (lossless)" if infinite else NOT_AVAILABLE
    lo, hi = min(got), max(got)
    text = format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"
    return f"{text}-inf (lossless)" if infinite else text


def _titled(metric: str) -> str:
    """The column title: the unit of the raw value (a transformed metric's unit is its
    BD axis', e.g. MS-SSIM's dB, so none is shown)."""
    s = spec(metric)
    return f"{metric} ({s.unit})" if s.unit and s.transform is None else metric


def print_summary(output: Path, cells: list, summary: RunSummary, stream: TextIO,
                   stopped: bool) -> None:
    from tabulate import tabulate

    curves, _ = load_curves(summary.db_path, cells=cells)
    lead = reported_metrics(curves)  # PSNR-RGB, MS-SSIM-RGB, or the pair that leads instead
    psnr, msssim = lead[0], lead[1 if len(lead) > 1 else 0]
    rows = []
    for c in curves:
        col = {m: [p.values.get(m) for p in c.points] for m in ("bpp", psnr, msssim, "sr_s")}
        rows.append([c.dataset, c.label, len(c.points), max((p.images for p in c.points),
                                                            default=0),
                     fmt_range(col["bpp"], ".4f"), fmt_range(col[psnr], ".2f"),
                     fmt_range(col[msssim], ".4f")])
    if rows:
        print(tabulate(rows, headers=["dataset", "codec+sr", "points", "images", "bpp",
                                      _titled(psnr), _titled(msssim)]), file=stream)
        if any(NOT_AVAILABLE in row for row in rows):
            print(NOT_AVAILABLE_NOTE, file=stream)
    if summary.reporting.get("bd_aggregate", "curve") == "curve" and \
            summary.reporting.get("rate", "mean") == "mean":
        _warn_dominance(curves, stream)
    short = not_evaluated_line(summary.skipped)
    if short:  # optional metrics' missing weights: one line a run, details in the dry run
        print(f"\n{short}", file=stream)
    others = [s for s in summary.skipped if not (s.kind == "metric" and
                                                 s.reason.startswith("missing weights"))]
    if others:
        print("\nskipped (not evaluated):", file=stream)
        grouped: dict[tuple[str, str], list[str]] = {}
        for s in others:
            grouped.setdefault((s.kind, s.name), []).append(s.reason)
        prefix = "missing weights: "
        for (kind, name), reasons in grouped.items():
            weights = [r.removeprefix(prefix) for r in reasons if r.startswith(prefix)]
            reasons = [r for r in reasons if not r.startswith(prefix)] + [
                prefix + line for line in group_remedies(weights)]
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
    print(f"results: {output}" + (f" ({summary.reports})" if summary.reports else ""),
          file=stream)


def _warn_dominance(curves: list, stream: TextIO) -> None:
    """One warning per image that dominates some curve's mean rate (rule in the text)."""
    found: dict[tuple[str, str], list[str]] = {}
    shares: dict[tuple[str, str], Any] = {}
    for c in curves:
        for d in dominant_images(c):
            key = (c.dataset, d.image)
            found.setdefault(key, []).append(c.label)
            if key not in shares or d.rate_share > shares[key].rate_share:
                shares[key] = d
    for (dataset, image), labels in found.items():
        d = shares[(dataset, image)]
        print(f"warning: {dataset}/{image} dominates the mean rate of {', '.join(labels)}: "
              f"up to {d.rate_share:.0%} of the mean bpp from {d.pixel_share:.1%} of the "
              f"pixels (share of the mean bpp > {DOMINANCE_FACTOR:g}x its pixel share and "
              f"> {DOMINANCE_SHARE:.0%}); one image can decide the BD-rate: see "
              "--bd-aggregate per-image or --rate pooled", file=stream)
