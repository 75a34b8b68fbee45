"""Metric labels: how each quality metric is named, its BD/plot axis and transform.

Shared by the leaderboards, the plots, the planner (``--anchor CODEC+SR``) and CI's
``compare``: one table, so a metric added here is reported and judged everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.results.bd import msssim_db
from jcsr_bench.results.curves import Curve

RATE = "bpp"


@dataclass(frozen=True)
class QualitySpec:
    """How a quality metric is named, which unit BD-quality has, how it is transformed."""

    short: str  # column / axis name, e.g. "PSNR"
    unit: str  # unit of BD-quality and of the plot axis, e.g. "dB"
    axis: str  # axis label for plots
    transform: Callable[[float], float] | None = None


QUALITY_METRICS: dict[str, QualitySpec] = {
    "psnr-rgb": QualitySpec("PSNR", "dB", "PSNR-RGB (dB)"),
    "psnr-y": QualitySpec("PSNR-Y", "dB", "PSNR-Y, BT.601 luma (dB)"),
    "ms-ssim-rgb": QualitySpec("MS-SSIM", "dB", "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)", msssim_db),
}


def negate(value: float) -> float:
    """The monotone transform of a distance (lower is better) into a BD quality axis."""
    return -value


#: Perceptual distances (lower is better): BD and RD plots use −distance, so that
#: "higher is better" holds on every quality axis and the BD sign convention is kept.
PERCEPTUAL_METRICS: dict[str, QualitySpec] = {
    "lpips": QualitySpec("LPIPS", "", "−LPIPS (AlexNet; lower LPIPS is better)", negate),
    "lpips-vgg": QualitySpec("LPIPS-VGG", "", "−LPIPS (VGG; lower LPIPS is better)", negate),
    "dists": QualitySpec("DISTS", "", "−DISTS (lower DISTS is better)", negate),
}
QUALITY_METRICS.update(PERCEPTUAL_METRICS)
PERCEPTUAL_CONVENTIONS = (
    "LPIPS v0.1 and DISTS on the full 8-bit RGB image (LPIPS inputs scaled to [−1, 1], "
    "DISTS inputs to [0, 1]), mean of per-image values, lower is better; BD uses "
    "−distance as the quality axis, so a positive BD-LPIPS / BD-DISTS is a lower "
    "distance than the anchor's at equal rate, in the metric's own units"
)


def reported_metrics(curves: Iterable[Curve]) -> tuple[str, ...]:
    """PSNR and MS-SSIM always; each perceptual distance the results hold a value of."""
    present = {m for c in curves for p in c.points for m, v in p.values.items() if v is not None}
    return ("psnr-rgb", "ms-ssim-rgb", *(m for m in PERCEPTUAL_METRICS if m in present))

def spec(metric: str) -> QualitySpec:
    """The :class:`QualitySpec` of a metric (a plain one for metrics not listed)."""
    return QUALITY_METRICS.get(metric, QualitySpec(metric, "", metric))


def rd_series(curve: Curve, metric: str) -> tuple[list[float], list[float], list[str]]:
    """(bpp, quality, notes) of a curve, quality transformed as BD and plots use it.

    Points where either value is missing or the transform is infinite are left out;
    ``notes`` says why (from the points' recorded reasons), so a report can show it.
    """
    transform = spec(metric).transform
    rates: list[float] = []
    quals: list[float] = []
    notes: list[str] = []
    for p in curve.points:
        r, q = p.values.get(RATE), p.values.get(metric)
        if r is None or q is None:
            missing = metric if q is None else RATE
            why = p.reasons.get(missing)
            notes.append(f"{missing} n/a: {why}" if why else f"no {missing} at quality {p.quality}")
            continue
        if transform is not None:
            try:
                q = transform(q)
            except ValueError as exc:
                notes.append(f"{metric} at quality {p.quality}: {exc}")
                continue
            if not math.isfinite(q):
                notes.append(f"{metric} = 1 at quality {p.quality} (infinite in dB)")
                continue
        rates.append(float(r))
        quals.append(float(q))
    return rates, quals, list(dict.fromkeys(notes))


def parse_label(text: str) -> tuple[str, str]:
    """``"codec+sr"`` -> ``(codec, sr)`` (split at the first ``+``)."""
    codec, sep, sr = text.partition("+")
    if not sep or not codec or not sr:
        raise JcsrError(f"{text!r} is not a combination; write it as CODEC+SR, e.g. bmshj+bicubic")
    return codec, sr
