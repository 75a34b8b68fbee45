"""Rate–distortion plots: quality vs bpp per dataset, one curve per combination.

matplotlib is imported inside :func:`plot_rd` (it is slow to import and only reports
need it), and only its object API is used with the Agg/SVG canvases — no pyplot, no
global backend switch, no state shared with a caller's own figures. The SVG output is
made reproducible (fixed hash salt, no date), so re-rendering gives the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jcsr_bench.kit.identity import safe_filename
from jcsr_bench.results.curves import Curve
from jcsr_bench.results.labels import (
    PERCEPTUAL_METRICS,
    TABLE_METRICS,
    present_metrics,
    rd_series,
    reported_metrics,
    spec,
)

__all__ = ["BPP_LABEL", "STYLE", "new_figure", "plot_fig6", "plot_perception_distortion",
           "plot_rd", "plot_reports", "plot_text", "save_figure", "save_pdf"]

BPP_LABEL = "Rate (bpp = bits / HR pixels)"
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h")
_STYLES = ("-", "--", "-.", ":")
# Reproducible SVG (fixed ids), text kept as text (searchable, smaller files).
# PDF fonts as TrueType (Type 42) programs, embedded: what journals' checkers want.
STYLE = {"svg.hashsalt": "jcsr-bench", "svg.fonttype": "none", "font.size": 10,
         "pdf.fonttype": 42}


def plot_text(label: str) -> str:
    """A plugin-given name as matplotlib text: no mathtext, not hidden by a leading '_'."""
    label = label.replace("$", r"\$").replace("\n", " ")
    return " " + label if label.startswith("_") else label


def new_figure(width: float = 7.5, height: float = 5.0, dpi: int = 120) -> Any:
    """A matplotlib figure on the Agg canvas (object API: no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, base: Path, pdf: bool = False) -> list[Path]:
    """``base``.png and ``base``.svg (and ``base``.pdf with its fonts embedded), with no
    software/date metadata (reproducible)."""
    png, svg = base.with_name(base.name + ".png"), base.with_name(base.name + ".svg")
    fig.savefig(png, format="png", metadata={"Software": None})
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    if not pdf:
        return [png, svg]
    return [png, svg, save_pdf(fig, base.with_name(base.name + ".pdf"))]


def save_pdf(fig: Any, path: Path) -> Path:
    """``fig`` as a PDF with TrueType fonts embedded and no date (reproducible)."""
    import matplotlib

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(path, format="pdf", metadata={"CreationDate": None, "Creator": None,
                                                  "Producer": None})
    return path


def plot_rd(
    curves: Sequence[Curve],
    out_dir: str | Path,
    *,
    anchor: tuple[str, str] | None = None,
    quality_metrics: Sequence[str] | None = None,
) -> list[Path]:
    """Write one PNG, SVG and PDF per dataset and quality metric; return their paths.

    ``quality_metrics`` defaults to the leaderboard's (``reported_metrics``) and every
    metric of its per-metric BD table the results hold (the JPEG AI set, SSIMULACRA 2,
    CVVDP); distances are plotted as −distance (up is better on every axis).

    Each combination is one curve (markers at the measured points, in bpp order); the
    anchor (``(codec, sr)``) is drawn thick and black on top and marked in the legend.
    MS-SSIM is plotted in dB (−10·log10(1 − MS-SSIM)), like the BD numbers. Points
    without a value are left out; a combination with none is listed in the legend
    as "(no data)".
    """
    import matplotlib
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not quality_metrics:
        lead = reported_metrics(curves)
        quality_metrics = (*lead, *(m for m in present_metrics(curves, TABLE_METRICS)
                                    if m not in lead))
    quality_metrics = tuple(quality_metrics)
    anchor_label = f"{anchor[0]}+{anchor[1]}" if anchor is not None else None
    datasets = list(dict.fromkeys(c.dataset for c in curves))
    written: list[Path] = []
    for dataset in datasets:
        group = [c for c in curves if c.dataset == dataset]
        for metric in quality_metrics:
            with matplotlib.rc_context(STYLE):
                fig = new_figure()
                _rd_axes(fig.add_subplot(), dataset, group, metric, anchor_label)
                written += save_figure(
                    fig, out / f"rd-{safe_filename(dataset)}-{safe_filename(metric)}", pdf=True)
    return written


def _rd_axes(ax: Any, dataset: str, group: Sequence[Curve], metric: str,
             anchor_label: str | None) -> None:
    """One RD plot: every curve of ``group``, the anchor thick and black underneath."""
    import matplotlib

    colors = matplotlib.colormaps["tab10"].colors
    s = spec(metric)
    # Anchor first (legend order) and underneath, thick: thinner coloured
    # curves stay visible on top of it.
    for curve in (c for c in group if c.label == anchor_label):
        _draw(
            ax,
            curve,
            metric,
            color="black",
            marker="o",
            linestyle="-",
            linewidth=3.5,
            alpha=0.8,
            zorder=1,
            suffix=" (anchor)",
        )
    for i, curve in enumerate(c for c in group if c.label != anchor_label):
        _draw(
            ax,
            curve,
            metric,
            color=colors[i % len(colors)],
            marker=_MARKERS[i % len(_MARKERS)],
            linestyle=_STYLES[(i // len(colors)) % len(_STYLES)],
            linewidth=1.5,
            zorder=2,
            suffix="",
        )
    ax.set_xlabel(BPP_LABEL)
    ax.set_ylabel(s.axis)
    ax.set_title(f"{plot_text(dataset)}: {s.short} vs rate")
    ax.grid(True, alpha=0.3)
    if group:
        ax.legend(loc="lower right", fontsize=8)


def plot_fig6(curves: Sequence[Curve], out_dir: str | Path, *,
              anchor: tuple[str, str] | None = None) -> list[Path]:
    """The paper's Fig. 6 layout: PSNR and MS-SSIM RD side by side, one PDF per dataset."""
    import matplotlib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    anchor_label = f"{anchor[0]}+{anchor[1]}" if anchor is not None else None
    written = []
    for dataset in dict.fromkeys(c.dataset for c in curves):
        group = [c for c in curves if c.dataset == dataset]
        with matplotlib.rc_context(STYLE):
            fig = new_figure(width=11.0, height=4.2)
            left, right = fig.subplots(1, 2)
            for ax, metric in ((left, "psnr-rgb"), (right, "ms-ssim-rgb")):
                _rd_axes(ax, dataset, group, metric, anchor_label)
            written.append(save_pdf(fig, out / f"fig6-{safe_filename(dataset)}.pdf"))
    return written


def _draw(ax, curve: Curve, metric: str, *, suffix: str, **style) -> None:
    rates, quals, _ = rd_series(curve, metric)
    pairs = sorted(zip(rates, quals))
    label = plot_text(curve.label) + suffix + ("" if pairs else " (no data)")
    ax.plot(
        [r for r, _ in pairs],
        [q for _, q in pairs],
        label=label,
        markersize=5,
        **style,
    )


def plot_reports(
    curves: Sequence[Curve], out_dir: str | Path, *, anchor: tuple[str, str] | None = None
) -> list[Path]:
    """Every plot a run writes: RD plots, and perception–distortion plots when LPIPS
    (or DISTS) was computed."""
    written = plot_rd(curves, out_dir, anchor=anchor)
    written += plot_fig6(curves, out_dir, anchor=anchor)
    perceptual = [m for m in reported_metrics(curves) if m in PERCEPTUAL_METRICS]
    if perceptual:
        written += plot_perception_distortion(curves, out_dir, anchor=anchor,
                                              distance=perceptual[0])
    return written


def plot_perception_distortion(
    curves: Sequence[Curve],
    out_dir: str | Path,
    *,
    anchor: tuple[str, str] | None = None,
    distance: str = "lpips",
    fidelity: str = "psnr-rgb",
) -> list[Path]:
    """The perception–distortion view (Blau & Michaeli): per dataset, ``fidelity``
    (PSNR) against ``distance`` (LPIPS), one curve per combination through its
    qualities. Better is up (fidelity) and left (distance). PNG and SVG per dataset."""
    import matplotlib
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    anchor_label = f"{anchor[0]}+{anchor[1]}" if anchor is not None else None
    colors = matplotlib.colormaps["tab10"].colors
    written: list[Path] = []
    for dataset in dict.fromkeys(c.dataset for c in curves):
        with matplotlib.rc_context(STYLE):
            fig = new_figure()
            ax = fig.add_subplot()
            others = 0
            for curve in (c for c in curves if c.dataset == dataset):
                points = sorted(
                    (p.values[distance], p.values[fidelity]) for p in curve.points
                    if p.values.get(distance) is not None and p.values.get(fidelity) is not None
                )
                is_anchor = curve.label == anchor_label
                style = ({"color": "black", "linewidth": 3.5, "alpha": 0.8, "zorder": 1}
                         if is_anchor else
                         {"color": colors[others % len(colors)], "linewidth": 1.5, "zorder": 2,
                          "marker": _MARKERS[others % len(_MARKERS)]})
                others += not is_anchor
                label = (plot_text(curve.label) + (" (anchor)" if is_anchor else "")
                         + ("" if points else " (no data)"))
                ax.plot([d for d, _ in points], [f for _, f in points], label=label,
                        markersize=5, **{"marker": "o", **style})
            ax.set_xlabel(f"{spec(distance).short} (lower is better)")
            ax.set_ylabel(spec(fidelity).axis)
            ax.set_title(f"{plot_text(dataset)}: perception–distortion")
            ax.grid(True, alpha=0.3)
            ax.legend(loc="lower left", fontsize=8)
            written += save_figure(
                fig, out / f"pd-{safe_filename(dataset)}-{safe_filename(distance)}", pdf=True)
    return written
