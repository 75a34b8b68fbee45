"""Charts for regression tracking: baseline-vs-current RD overlays and history trends.

Same style as :mod:`.plots`: matplotlib's object API on the Agg/SVG canvases (no
pyplot, no global backend), imported only when a chart is drawn; reproducible SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jcsr_bench.ci.compare import Comparison
from jcsr_bench.kit.identity import safe_filename
from jcsr_bench.report.plots import BPP_LABEL, STYLE, new_figure, plot_text, save_figure
from jcsr_bench.results.labels import spec

__all__ = ["plot_history", "plot_overlays"]


def plot_overlays(comparison: Comparison, out_dir: str | Path) -> list[Path]:
    """One figure per combination whose outputs changed: baseline and current
    RD curves overlaid, one panel per judged metric. Returns the files written."""
    import matplotlib

    out = Path(out_dir)
    written: list[Path] = []
    for c in comparison.ordered():
        if not c.metrics or c.identical:
            continue
        out.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context(STYLE):
            fig = new_figure(5.0 * len(c.metrics), 4.2)
            for i, m in enumerate(c.metrics):
                ax = fig.add_subplot(1, len(c.metrics), i + 1)
                for side, style in (("baseline", {"color": "black", "linestyle": "--",
                                                  "marker": "o", "linewidth": 2.5,
                                                  "alpha": 0.7}),
                                    ("current", {"color": "tab:red", "linestyle": "-",
                                                 "marker": "s", "linewidth": 1.5})):
                    pairs = sorted((p[f"bpp_{side}"], p[side]) for p in m.points
                                   if p[f"bpp_{side}"] is not None and p[side] is not None)
                    ax.plot([r for r, _ in pairs], [q for _, q in pairs], label=side,
                            markersize=5, **style)
                bd = "n/a" if m.bd_rate is None else f"{m.bd_rate:+.2f} %"
                ax.set_title(f"{plot_text(m.metric)}: BD-rate {bd} ({c.metric_status(m)})")
                ax.set_xlabel(BPP_LABEL)
                ax.set_ylabel(spec(m.metric).axis)
                ax.grid(True, alpha=0.3)
                ax.legend(loc="lower right", fontsize=8)
            fig.suptitle(plot_text(f"{c.dataset} / {c.label}: {c.status}"))
            base = out / f"compare-{safe_filename(c.dataset)}-{safe_filename(c.label)}"
            written += save_figure(fig, base)
    return written


def plot_history(series: dict[str, list[tuple[str, float | None]]], commits: Sequence[str],
                 out_base: str | Path, *, title: str, anchor: str) -> list[Path]:
    """BD-rate vs the anchor over commits, one line per combination (None = a gap)."""
    import matplotlib

    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    x = list(range(len(commits)))
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(6.0, 1.2 * len(commits) + 3.0), 4.5)
        ax = fig.add_subplot()
        ax.axhline(0.0, color="black", linewidth=2.5, alpha=0.7,
                   label=plot_text(f"{anchor} (anchor)"))
        for label, points in series.items():
            by_commit = dict(points)
            ys = [by_commit.get(c) for c in commits]
            ax.plot(x, [float("nan") if y is None else y for y in ys], marker="o",
                    linewidth=1.5, label=plot_text(label))
        ax.set_xticks(x, [c[:10] for c in commits], rotation=30, ha="right")
        ax.set_xlabel("commit (oldest first)")
        ax.set_ylabel(f"BD-rate vs {plot_text(anchor)} (%, lower is better)")
        ax.set_title(plot_text(title))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        return save_figure(fig, out_base)
