"""The leaderboard with many metrics (issue 28): the JPEG AI set in one BD-Rate table per
dataset under the main one, each metric on its own axis (−NLPD, MS-SSIM-Y in dB), each
n/a with its reason."""

from __future__ import annotations

import pytest

from jcsr_bench.report.leaderboard import render_leaderboard
from jcsr_bench.results.bd import bd_rate
from jcsr_bench.results.curves import Curve, Point
from jcsr_bench.results.labels import reported_metrics

RATES = [0.1, 0.2, 0.4, 0.8]
META = {"harness_version": "1", "datasets": {"d": {"images": 2}}}


def _curve(codec, scale, *, small=False):
    """``scale`` < 1: the same quality at fewer bits. ``small``: IW-SSIM n/a (too small)."""
    points = []
    for i, r in enumerate(RATES):
        values = {"bpp": r * scale, "psnr-y709": 30 + 3 * i, "ms-ssim-y": 0.9 + 0.02 * i,
                  "vif": 0.4 + 0.1 * i, "nlpd": 0.3 - 0.05 * i,
                  "iw-ssim": None if small else 0.9 + 0.02 * i}
        reasons = {"iw-ssim": "short side 128 px < 161: IW-SSIM's 5 scales need 161 px"} \
            if small else {}
        points.append(Point(i + 1, values, reasons, 2))
    return Curve("d", codec, "bicubic", points)


def _render(curves):
    return render_leaderboard(curves, META, anchor=("jpeg", "bicubic"))


def test_jpeg_ai_results_lead_with_psnr_y709_and_list_every_metric_below():
    text = _render([_curve("jpeg", 1.0), _curve("webp", 0.5)])
    assert reported_metrics([_curve("jpeg", 1.0)]) == ("psnr-y709", "ms-ssim-y")
    main, below = text.split("BD-Rate (%) per metric", 1)
    assert "BD-Rate PSNR-Y709 (%)" in main and "BD-Rate PSNR (%)" not in main
    header = next(line for line in below.splitlines() if line.startswith("| Combination"))
    for short in ("PSNR-Y709", "MS-SSIM-Y", "VIF", "NLPD", "IW-SSIM"):
        assert f"BD-Rate {short} (%)" in header
    row = next(line for line in below.splitlines() if line.startswith("| webp+bicubic"))
    # half the bits at equal quality on every axis: −50 %, NLPD (negated) included
    assert row.count("-50.00") == 5
    # on NLPD's raw (decreasing) axis BD would be undefined; −NLPD gives the same −50 %
    assert bd_rate(RATES, [-0.3, -0.25, -0.2, -0.15], [r / 2 for r in RATES],
                   [-0.3, -0.25, -0.2, -0.15]) == pytest.approx(-50.0)
    assert "JPEG AI metrics:" in text and "BT.709" in text


def test_an_na_metric_says_why_under_the_table():
    text = _render([_curve("jpeg", 1.0), _curve("webp", 0.5, small=True)])
    below = text.split("BD-Rate (%) per metric", 1)[1]
    row = next(line for line in below.splitlines() if line.startswith("| webp+bicubic"))
    assert "n/a [1]" in row
    note = next(line for line in below.splitlines() if line.startswith("- [1]"))
    assert "161" in note


def test_results_without_the_jpeg_ai_set_render_as_before():
    curve = Curve("d", "jpeg", "bicubic",
                  [Point(i, {"bpp": r, "psnr-rgb": 30.0 + i}, {}, 2) for i, r in enumerate(RATES)])
    text = _render([curve])
    assert "per metric" not in text and "JPEG AI" not in text


def test_rd_plots_cover_every_metric_of_the_per_metric_table(tmp_path):
    from jcsr_bench.report.plots import plot_rd

    curves = [Curve("d", codec, "bicubic", [
        Point(i, {"bpp": r * scale, "psnr-y709": 30.0 + i, "nlpd": 0.3 - 0.05 * i}, {}, 2)
        for i, r in enumerate(RATES)]) for codec, scale in (("jpeg", 1.0), ("webp", 0.5))]
    names = sorted(p.name for p in plot_rd(curves, tmp_path, anchor=("jpeg", "bicubic")))
    assert names == ["rd-d-nlpd.pdf", "rd-d-nlpd.png", "rd-d-nlpd.svg", "rd-d-psnr-y709.pdf",
                     "rd-d-psnr-y709.png", "rd-d-psnr-y709.svg"]


def test_results_of_the_newest_perceptual_metrics_alone_lead_with_them():
    curve = Curve("d", "jpeg", "bicubic", [Point(i, {"bpp": r, "ssimulacra2": 50.0 + i,
                                                    "cvvdp": 9.0 + 0.1 * i}, {}, 2)
                                           for i, r in enumerate(RATES)])
    assert reported_metrics([curve]) == ("ssimulacra2", "cvvdp")
    assert "BD-Rate SSIMULACRA2 (%)" in _render([curve]).split("\n## d")[1].splitlines()[2]


def test_a_metric_na_on_every_image_keeps_its_column_and_reason():
    text = _render([_curve("jpeg", 1.0, small=True), _curve("webp", 0.5, small=True)])
    below = text.split("BD-Rate (%) per metric", 1)[1]
    assert "BD-Rate IW-SSIM (%)" in below
    row = next(line for line in below.splitlines() if line.startswith("| webp+bicubic"))
    assert row.count("n/a [") == 1
    assert any("161" in line for line in below.splitlines() if line.startswith("- ["))
