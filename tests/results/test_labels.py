"""Metric labels and specs (``jcsr_bench.results.labels``): one table for every report."""

import math

import pytest

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.results.curves import Curve, Point
from jcsr_bench.results.labels import (
    PERCEPTUAL_METRICS,
    QUALITY_METRICS,
    parse_label,
    rd_series,
    reported_metrics,
    spec,
)


def _curve(points):
    return Curve("d", "c", "s", [Point(q, v, images=1) for q, v in points])


def test_specs_name_units_and_transforms():
    assert spec("psnr-rgb").short == "PSNR" and spec("psnr-rgb").unit == "dB"
    assert spec("ms-ssim-rgb").transform(0.99) == pytest.approx(20.0)
    assert spec("lpips").transform(0.25) == -0.25  # lower is better: negated axis
    assert spec("my-metric").short == "my-metric" and spec("my-metric").transform is None
    assert set(PERCEPTUAL_METRICS) <= set(QUALITY_METRICS)


def test_rd_series_drops_points_without_a_value_and_says_why():
    curve = _curve([(1, {"bpp": 0.1, "psnr-rgb": 20.0}), (2, {"bpp": 0.2, "psnr-rgb": None}),
                    (3, {"bpp": 0.3, "ms-ssim-rgb": 1.0})])
    assert rd_series(curve, "psnr-rgb")[:2] == ([0.1], [20.0])
    rates, values, notes = rd_series(curve, "ms-ssim-rgb")
    assert rates == [] and "ms-ssim-rgb = 1 at quality 3 (infinite in dB)" in notes
    assert not any(math.isinf(v) for v in values)


def test_reported_metrics_add_perceptual_ones_only_when_present():
    plain = _curve([(1, {"bpp": 0.1, "psnr-rgb": 20.0})])
    assert reported_metrics([plain]) == ("psnr-rgb", "ms-ssim-rgb")
    perceptual = _curve([(1, {"bpp": 0.1, "dists": 0.2})])
    assert reported_metrics([plain, perceptual]) == ("psnr-rgb", "ms-ssim-rgb", "dists")


def test_parse_label():
    assert parse_label("bmshj+esrgan-b2") == ("bmshj", "esrgan-b2")
    assert parse_label("a+b+c") == ("a", "b+c")
    with pytest.raises(JcsrError, match="write it as CODEC\\+SR"):
        parse_label("bmshj")
