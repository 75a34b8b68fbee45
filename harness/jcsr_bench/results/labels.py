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


#: The JPEG AI CTC metrics (BT.709 full range, 10-bit; docs/metrics.md): BD on the value
#: itself, MS-SSIM-Y in dB as MS-SSIM, NLPD (a distance) negated as LPIPS.
JPEG_AI_METRICS: dict[str, QualitySpec] = {
    "psnr-y709": QualitySpec("PSNR-Y709", "dB", "PSNR-Y, BT.709 10-bit (dB)"),
    "psnr-u709": QualitySpec("PSNR-U709", "dB", "PSNR-U, BT.709 10-bit (dB)"),
    "psnr-v709": QualitySpec("PSNR-V709", "dB", "PSNR-V, BT.709 10-bit (dB)"),
    "ms-ssim-y": QualitySpec("MS-SSIM-Y", "dB", "MS-SSIM-Y, BT.709 10-bit (dB) = "
                             "−10·log10(1 − MS-SSIM)", msssim_db),
    "vif": QualitySpec("VIF", "", "VIFp, BT.709 10-bit Y"),
    "fsim": QualitySpec("FSIM", "", "FSIMc, 10-bit RGB"),
    "nlpd": QualitySpec("NLPD", "", "−NLPD, BT.709 10-bit Y (lower NLPD is better)", negate),
    "iw-ssim": QualitySpec("IW-SSIM", "", "IW-SSIM, BT.709 10-bit Y"),
    "vmaf": QualitySpec("VMAF", "", "VMAF v0.6.1, BT.709 10-bit Y"),
    "psnr-hvs": QualitySpec("PSNR-HVS", "dB", "PSNR-HVS, BT.709 10-bit Y (dB)"),
    "psnr-hvs-m": QualitySpec("PSNR-HVS-M", "dB", "PSNR-HVS-M, BT.709 10-bit Y (dB)"),
}
QUALITY_METRICS.update(JPEG_AI_METRICS)
#: The newest perceptual metrics (higher is better): BD on their own scale.
NEWER_PERCEPTUAL_METRICS: dict[str, QualitySpec] = {
    "ssimulacra2": QualitySpec("SSIMULACRA2", "", "SSIMULACRA 2 (ssimulacra2 package)"),
    "cvvdp": QualitySpec("CVVDP", "JOD", "ColorVideoVDP, standard_4k (JOD)"),
}
QUALITY_METRICS.update(NEWER_PERCEPTUAL_METRICS)
#: Metrics the leaderboard lists in its per-metric BD table when the results hold them.
TABLE_METRICS = (*JPEG_AI_METRICS, *NEWER_PERCEPTUAL_METRICS)
JPEG_AI_CONVENTIONS = (
    "JPEG AI set in the JPEG AI framework's conventions: RGB rounded to 10 bits, BT.709 "
    "full-range Y'CbCr rounded to 10 bits; PSNR-Y/U/V709 peak 1023; MS-SSIM-Y "
    "(pytorch-msssim), VIFp, IW-SSIM (piq), NLPD, PSNR-HVS (psnr-hvsm) and VMAF v0.6.1 "
    "(vmaf-torch) on Y; FSIMc (piq) on 10-bit RGB; mean of per-image values; BD on "
    "−NLPD and on MS-SSIM-Y in dB"
)


def _measured(curves: Iterable[Curve]) -> set[str]:
    """Metrics some point holds a value of, or the reason why it has none (n/a)."""
    return {m for c in curves for p in c.points
            for m in (*(m for m, v in p.values.items() if v is not None), *p.reasons)}


def present_metrics(curves: Iterable[Curve], candidates: Iterable[str]) -> tuple[str, ...]:
    """The ``candidates`` (in their order) that some point of ``curves`` holds a value of,
    or an n/a reason for (a metric undefined on every image is shown with its reason)."""
    measured = _measured(curves)
    return tuple(m for m in candidates if m in measured)


def reported_metrics(curves: Iterable[Curve]) -> tuple[str, ...]:
    """PSNR and MS-SSIM always; each perceptual distance the results hold a value of.

    Results without PSNR-RGB and MS-SSIM-RGB (``--metrics jpeg-ai``, ``--metrics
    ssimulacra2,cvvdp``) lead with the JPEG AI set's PSNR-Y709 and MS-SSIM-Y instead, else
    with the first two metrics of the per-metric table that they hold.
    """
    present = {m for c in curves for p in c.points for m, v in p.values.items() if v is not None}
    lead: tuple[str, ...] = ("psnr-rgb", "ms-ssim-rgb")
    if not present & set(lead):
        measured = _measured(curves)
        held = [m for m in ("psnr-y709", "ms-ssim-y", *TABLE_METRICS) if m in measured]
        lead = tuple(dict.fromkeys(held))[:2] or lead
    return (*lead, *(m for m in PERCEPTUAL_METRICS if m in present and m not in lead))


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
