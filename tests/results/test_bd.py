"""Bjøntegaard metrics: published check values, invariants, and every refusal."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.integrate import quad, trapezoid
from scipy.interpolate import PchipInterpolator

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.results.bd import BDError, BDOverlapWarning, bd_quality, bd_rate, msssim_db

# REFERENCE.md check values (VCEG/JVET test data).
R1 = [9487.76, 4593.60, 2486.44, 1358.24]
Q1 = [40.037, 38.615, 36.845, 34.851]
R2 = [9787.80, 4469.00, 2451.52, 1356.24]
Q2 = [40.121, 38.651, 36.970, 34.987]
CHECK = {
    "cubic": (-4.4204627061, 0.1204094191),
    "pchip": (-4.4174853506, 0.1196927854),
    "akima": (-4.4252451570, 0.1194092703),
}
METHODS = sorted(CHECK)


@pytest.mark.parametrize("method", METHODS)
def test_reference_check_values(method):
    rate, quality = CHECK[method]
    assert bd_rate(R1, Q1, R2, Q2, method=method) == pytest.approx(rate, abs=1e-6)
    assert bd_quality(R1, Q1, R2, Q2, method=method) == pytest.approx(quality, abs=1e-6)


def test_default_method_is_pchip():
    assert bd_rate(R1, Q1, R2, Q2) == pytest.approx(CHECK["pchip"][0], abs=1e-9)
    assert bd_quality(R1, Q1, R2, Q2) == pytest.approx(CHECK["pchip"][1], abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    assert bd_rate(R1, Q1, R1, Q1, method=method) == pytest.approx(0.0, abs=1e-12)
    assert bd_quality(R1, Q1, R1, Q1, method=method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [0.5, 0.8, 1.25, 3.0])
def test_scaled_rate_gives_k_minus_one(method, k):
    scaled = [r * k for r in R1]
    assert bd_rate(R1, Q1, scaled, Q1, method=method) == pytest.approx((k - 1) * 100, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c", [-0.7, 0.25, 1.5])
def test_shifted_quality_gives_c(method, c):
    shifted = [q + c for q in Q1]
    assert bd_quality(R1, Q1, R1, shifted, method=method) == pytest.approx(c, abs=1e-9)


def test_signs_follow_the_convention():
    # A test needing fewer bits for the same quality: negative BD-rate, positive BD-quality.
    cheaper = [r * 0.9 for r in R1]
    assert bd_rate(R1, Q1, cheaper, Q1) < 0
    assert bd_quality(R1, Q1, cheaper, Q1) > 0


@pytest.mark.parametrize("method", METHODS)
def test_point_order_does_not_matter(method):
    rng = np.random.default_rng(7)
    expected = (bd_rate(R1, Q1, R2, Q2, method=method), bd_quality(R1, Q1, R2, Q2, method=method))
    for _ in range(5):
        a, t = rng.permutation(4), rng.permutation(4)
        args = (
            [R1[i] for i in a],
            [Q1[i] for i in a],
            [R2[i] for i in t],
            [Q2[i] for i in t],
        )
        assert bd_rate(*args, method=method) == pytest.approx(expected[0], abs=1e-12)
        assert bd_quality(*args, method=method) == pytest.approx(expected[1], abs=1e-12)


def test_pchip_integral_is_exact():
    # Independent reference: adaptive numerical quadrature of the same interpolant.
    q1, lr1 = np.array(Q1[::-1]), np.log10(R1[::-1])
    q2, lr2 = np.array(Q2[::-1]), np.log10(R2[::-1])
    lo, hi = max(q1[0], q2[0]), min(q1[-1], q2[-1])
    f1, f2 = PchipInterpolator(q1, lr1), PchipInterpolator(q2, lr2)
    area = quad(lambda x: f2(x) - f1(x), lo, hi, points=list(q1) + list(q2), epsabs=1e-13)[0]
    expected = (10 ** (area / (hi - lo)) - 1) * 100
    assert bd_rate(R1, Q1, R2, Q2, method="pchip") == pytest.approx(expected, abs=1e-9)


def test_cubic_is_least_squares_beyond_four_points():
    # Independent reference: lstsq on a Vandermonde matrix + dense trapezoid integration.
    ra = np.array([0.1, 0.2, 0.35, 0.6, 0.9, 1.4])
    qa = np.array([27.1, 29.4, 31.0, 33.2, 34.6, 36.9])
    rt = ra * np.array([0.93, 0.9, 0.88, 0.91, 0.9, 0.86])
    qt = qa + np.array([0.0, 0.05, -0.02, 0.03, 0.0, 0.01])

    def fit_mean(x, y, lo, hi):
        coef = np.linalg.lstsq(np.vander(x, 4), y, rcond=None)[0]
        grid = np.linspace(lo, hi, 200001)
        return trapezoid(np.polyval(coef, grid), grid) / (hi - lo)

    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    diff = fit_mean(qt, np.log10(rt), lo, hi) - fit_mean(qa, np.log10(ra), lo, hi)
    assert bd_rate(ra, qa, rt, qt, method="cubic") == pytest.approx((10**diff - 1) * 100, abs=1e-6)
    # ... and not an interpolation through the points (PCHIP differs on the same data).
    assert bd_rate(ra, qa, rt, qt, method="cubic") != pytest.approx(
        bd_rate(ra, qa, rt, qt, method="pchip"), abs=1e-4
    )


def test_two_points_are_enough_for_pchip_and_akima():
    # With two points both fits are straight lines: BD-quality is the exact line gap.
    ra, qa = [0.1, 1.0], [30.0, 40.0]  # q = 40 + 10*log10(r)
    rt, qt = [0.1, 1.0], [31.0, 41.0]
    for method in ("pchip", "akima"):
        assert bd_quality(ra, qa, rt, qt, method=method) == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------- refusals


def _raises(match, *args, method="pchip", fns=(bd_rate, bd_quality)):
    for fn in fns:
        with pytest.raises(BDError, match=match):
            fn(*args, method=method)


def test_bderror_is_a_user_error():
    assert issubclass(BDError, JcsrError)


def test_non_monotonic_curve_is_refused():
    bumpy = [40.037, 36.845, 38.615, 34.851]  # quality drops as rate rises
    _raises("anchor curve is not monotonic", R1, bumpy, R2, Q2)
    _raises("test curve is not monotonic", R1, Q1, R2, bumpy)


def test_repeated_rate_or_quality_is_refused():
    _raises("not monotonic.*share the rate", [1.0, 1.0, 2.0], [30.0, 31.0, 32.0], R2, Q2)
    _raises("not monotonic", R1, Q1, R2, [40.0, 38.0, 38.0, 34.0])


@pytest.mark.parametrize(("method", "needed"), [("cubic", 4), ("pchip", 2), ("akima", 2)])
def test_too_few_points_for_the_method(method, needed):
    few_r, few_q = R1[: needed - 1], Q1[: needed - 1]
    _raises(
        f"has {needed - 1} point.*{method} method needs at least {needed}",
        few_r,
        few_q,
        R2,
        Q2,
        method=method,
    )
    _raises(f"test curve has {needed - 1} point", R1, Q1, few_r, few_q, method=method)


def test_no_overlap_is_refused_not_zero():
    low_r, low_q = [0.1, 0.2, 0.3, 0.4], [25.0, 26.0, 27.0, 28.0]
    high_r, high_q = [1.0, 2.0, 3.0, 4.0], [30.0, 31.0, 32.0, 33.0]
    for method in METHODS:
        _raises(
            "do not overlap in quality", low_r, low_q, high_r, high_q, method=method, fns=(bd_rate,)
        )
        _raises(
            r"do not overlap in log10\(rate\)",
            low_r,
            low_q,
            high_r,
            high_q,
            method=method,
            fns=(bd_quality,),
        )
    # Touching at a single value is no overlap either.
    _raises(
        "do not overlap in quality",
        [0.1, 0.2],
        [25.0, 30.0],
        [1.0, 2.0],
        [30.0, 31.0],
        fns=(bd_rate,),
    )


def test_small_overlap_warns_but_computes():
    rt = [r * 1.1 for r in R1]
    qt = [q + 3.5 for q in Q1]  # quality overlap: 34.851+3.5 .. 40.037 of 34.851 .. 43.537
    with pytest.warns(BDOverlapWarning, match="overlap on only") as record:
        value = bd_rate(R1, Q1, rt, qt)
    assert math.isfinite(value)
    frac = (40.037 - 38.351) / (43.537 - 34.851)
    assert record[0].message.overlap == pytest.approx(frac)
    with warnings.catch_warnings():  # a large overlap is silent
        warnings.simplefilter("error")
        bd_rate(R1, Q1, R2, Q2)


@pytest.mark.parametrize(
    ("rates", "qualities", "match"),
    [
        ([1.0, float("nan")], [30.0, 31.0], "non-finite"),
        ([1.0, 2.0], [30.0, float("inf")], "non-finite"),
        ([0.0, 2.0], [30.0, 31.0], "rate <= 0"),
        ([-1.0, 2.0], [30.0, 31.0], "rate <= 0"),
        ([1.0, 2.0, 3.0], [30.0, 31.0], "3 rates but 2 quality"),
        (["a", "b"], [30.0, 31.0], "must be numbers"),
    ],
)
def test_bad_values_are_refused(rates, qualities, match):
    _raises(match, rates, qualities, R2, Q2)


def test_unknown_method_is_refused():
    _raises("unknown BD method 'spline'", R1, Q1, R2, Q2, method="spline")


def test_msssim_db():
    assert msssim_db(0.99) == pytest.approx(20.0)
    assert msssim_db(0.9) == pytest.approx(10.0)
    assert msssim_db(0.0) == pytest.approx(0.0)
    assert msssim_db(1.0) == math.inf
    for bad in (1.01, float("nan")):
        with pytest.raises(ValueError, match="MS-SSIM"):
            msssim_db(bad)
