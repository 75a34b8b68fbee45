"""Bjøntegaard-delta (BD) metrics: average rate or quality difference of two RD curves.

Two numbers summarise how a *test* RD curve compares with an *anchor* curve:

- :func:`bd_rate` — the average bit-rate difference at equal quality, in percent
  (negative = the test needs fewer bits);
- :func:`bd_quality` — the average quality difference at equal rate, in the quality's
  units (e.g. dB for PSNR; positive = the test is better).

Both fit each curve with a 1-D function and integrate it *exactly* over the interval
where the two curves overlap (quality for BD-rate, log10 rate for BD-quality):

- ``"pchip"`` (default): piecewise cubic Hermite interpolation, as in the JVET / VCEG
  Excel sheet (``scipy.interpolate.PchipInterpolator``, same end-slope rule);
- ``"akima"``: Akima spline (``scipy.interpolate.Akima1DInterpolator``);
- ``"cubic"``: the original VCEG-M33 (2001) cubic polynomial, a least-squares fit when
  a curve has more than 4 points.

The methods give slightly different numbers, so reports must name the one used.
MS-SSIM is compared in dB (:func:`msssim_db`), where its differences near 1 show.
Input that makes the result meaningless raises :class:`BDError` with the reason —
never 0.0 and never a silent number. A small overlap (< 75 % of the union of the two
intervals) gives a :class:`BDOverlapWarning`: the number is computed but covers only
part of the curves.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np

from jcsr_bench.kit.errors import JcsrError

Method = Literal["pchip", "akima", "cubic"]

METHODS: dict[str, int] = {"pchip": 2, "akima": 2, "cubic": 4}
"""Method name -> the minimum number of points per curve it needs."""

MIN_OVERLAP = 0.75
"""Overlap / union of the integration intervals below which a warning is given."""

__all__ = [
    "METHODS",
    "msssim_db",
    "MIN_OVERLAP",
    "BDError",
    "BDOverlapWarning",
    "bd_quality",
    "bd_rate",
]


class BDError(JcsrError):
    """BD is undefined for these curves; the message says why."""


class BDOverlapWarning(UserWarning):
    """The curves overlap on less than ``MIN_OVERLAP`` of their combined range."""

    def __init__(self, message: str, overlap: float):
        super().__init__(message)
        self.overlap = overlap


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    method: Method = "pchip",
    names: tuple[str, str] = ("anchor", "test"),
) -> float:
    """Average rate difference of *test* vs *anchor* at equal quality, in percent.

    log10(rate) is fitted as a function of quality for each curve; the fits are
    integrated over the common quality interval and the mean difference Δ is reported
    as ``(10**Δ - 1) * 100``. Negative means the test saves bits. Points may come in
    any order. Raises :class:`BDError` if the result would be meaningless; ``names``
    are the two curves' names in its messages (``compare`` says baseline and current).
    """
    anchor = _curve(names[0], anchor_rate, anchor_quality, method)
    test = _curve(names[1], test_rate, test_quality, method)
    lo, hi = _overlap(anchor[1], test[1], "quality", names)
    diff = _mean(test[1], np.log10(test[0]), lo, hi, method) - _mean(
        anchor[1], np.log10(anchor[0]), lo, hi, method
    )
    return float((10.0**diff - 1.0) * 100.0)


def bd_quality(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    method: Method = "pchip",
    names: tuple[str, str] = ("anchor", "test"),
) -> float:
    """Average quality difference of *test* vs *anchor* at equal rate (quality units).

    Quality is fitted as a function of log10(rate) for each curve; the fits are
    integrated over the common log-rate interval and the mean difference is returned
    (e.g. BD-PSNR in dB; positive means the test is better). Points may come in any
    order. Raises :class:`BDError` if the result would be meaningless.
    """
    anchor = _curve(names[0], anchor_rate, anchor_quality, method)
    test = _curve(names[1], test_rate, test_quality, method)
    xa, xt = np.log10(anchor[0]), np.log10(test[0])
    lo, hi = _overlap(xa, xt, "log10(rate)", names)
    return float(_mean(xt, test[1], lo, hi, method) - _mean(xa, anchor[1], lo, hi, method))


def msssim_db(value: float) -> float:
    """MS-SSIM (linear, at most 1) in dB: ``-10 * log10(1 - value)``.

    The dB scale spreads the values near 1 where codecs differ, so BD and plots use
    it. ``value == 1`` gives ``inf``, which reports must show as n/a.
    """
    v = float(value)
    if not math.isfinite(v) or v > 1.0:
        raise ValueError(f"MS-SSIM must be a finite number <= 1, got {value!r}")
    if v == 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - v)


def _curve(
    which: str, rate: Sequence[float], quality: Sequence[float], method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one curve; return (rate, quality) sorted by increasing rate."""
    if method not in METHODS:
        raise BDError(f"unknown BD method {method!r}; use one of: {', '.join(METHODS)}")
    try:
        r = np.asarray(rate, dtype=float).ravel()
        q = np.asarray(quality, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise BDError(f"{which} curve: rates and qualities must be numbers ({exc})") from exc
    if r.size != q.size:
        raise BDError(f"{which} curve: {r.size} rates but {q.size} quality values")
    needed = METHODS[method]
    if r.size < needed:
        raise BDError(
            f"{which} curve has {r.size} point(s); the {method} method needs at least {needed}"
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise BDError(f"{which} curve contains a non-finite rate or quality (NaN or inf)")
    if np.any(r <= 0):
        raise BDError(f"{which} curve contains a rate <= 0 (rates must be positive)")
    order = np.lexsort((q, r))
    r, q = r[order], q[order]
    if np.any(np.diff(r) <= 0):
        raise BDError(f"{which} curve is not monotonic: two points share the rate {_dup(r)}")
    bad = np.flatnonzero(np.diff(q) <= 0)
    if bad.size:
        i = int(bad[0])
        raise BDError(
            f"{which} curve is not monotonic: quality does not increase with rate "
            f"(quality {q[i]:g} at rate {r[i]:g}, quality {q[i + 1]:g} at rate {r[i + 1]:g})"
        )
    return r, q


def _dup(values: np.ndarray) -> str:
    i = int(np.flatnonzero(np.diff(values) <= 0)[0])
    return f"{values[i]:g}"


def _overlap(a: np.ndarray, b: np.ndarray, axis: str,
             names: tuple[str, str] = ("anchor", "test")) -> tuple[float, float]:
    """Common interval of two sorted axes; BDError if empty, warning if small."""
    lo, hi = max(a[0], b[0]), min(a[-1], b[-1])
    if not lo < hi:
        raise BDError(
            f"the curves do not overlap in {axis}: {names[0]} covers {a[0]:g} to "
            f"{a[-1]:g}, {names[1]} covers {b[0]:g} to {b[-1]:g}"
        )
    union = max(a[-1], b[-1]) - min(a[0], b[0])
    fraction = (hi - lo) / union
    if fraction < MIN_OVERLAP:
        warnings.warn(
            BDOverlapWarning(
                f"the curves overlap on only {fraction:.0%} of their combined {axis} range "
                f"({lo:g} to {hi:g} of {min(a[0], b[0]):g} to {max(a[-1], b[-1]):g}); "
                "BD covers only that part",
                fraction,
            ),
            stacklevel=3,
        )
    return float(lo), float(hi)


def _mean(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Mean of the fitted y(x) over [lo, hi], integrated exactly."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    if method == "cubic":
        # Centre x for a well-conditioned fit; exact polynomial integration.
        c = float(np.mean(x))
        poly = np.polyint(np.polyfit(x - c, y, 3))
        area = np.polyval(poly, hi - c) - np.polyval(poly, lo - c)
    else:
        from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

        cls = PchipInterpolator if method == "pchip" else Akima1DInterpolator
        area = cls(x, y).integrate(lo, hi)
    result = float(area) / (hi - lo)
    if not math.isfinite(result):  # pragma: no cover - guarded by validation above
        raise BDError("BD integration gave a non-finite value")
    return result
