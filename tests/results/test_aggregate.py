"""One number from many images: per-image BD, pooled rate, a dominating image (issue 25.1)."""

import math
import statistics

import numpy as np
import pytest

from jcsr_bench.report.leaderboard import render_leaderboard
from jcsr_bench.results.aggregate import (
    bootstrap_interval,
    dominant_images,
    per_image,
    pooled_curve,
    summarise,
)
from jcsr_bench.results.bd import bd_rate
from jcsr_bench.results.curves import Curve, Point

QUALITIES = (1, 2, 3, 4)
# image -> pixels; "thumb" is tiny, its header bits make its bpp large
PIXELS = {"big1": 512 * 768, "big2": 512 * 768, "big3": 480 * 640, "thumb": 40 * 30}


def _cell(name: str, q: int, bits_scale: float, psnr_shift: float) -> dict:
    pixels = PIXELS[name]
    bits = (pixels * 0.05 * q + (4000 if name == "thumb" else 0)) * bits_scale
    return {"bits": bits, "bpp": bits / pixels, "psnr-rgb": 28.0 + 2.0 * q + psnr_shift}


def _curve(codec: str, bits: dict[str, float], shift: float = 0.0) -> Curve:
    points = []
    for q in QUALITIES:
        per = {n: _cell(n, q, bits[n], shift) for n in PIXELS}
        values = {m: math.fsum(c[m] for c in per.values()) / len(per)
                  for m in ("bits", "bpp", "psnr-rgb")}
        points.append(Point(q, values, images=len(per), per_image=per))
    return Curve("photos", codec, "up", points)


ANCHOR = _curve("a", dict.fromkeys(PIXELS, 1.0))
# the test codec: 10 % more bits on every photo, half the bits on the thumbnail
TEST = _curve("b", {"big1": 1.1, "big2": 1.1, "big3": 1.1, "thumb": 0.5})
META = {"harness_version": "x", "datasets": {"photos": {"identity": "i", "images": 4}}}


def test_per_image_bd_is_the_mean_and_median_of_each_images_bd_rate():
    got = per_image(ANCHOR, TEST, "psnr-rgb", "pchip")
    expected = {}
    for name in PIXELS:  # each image's own curve, BD'd on its own
        series = [[p.per_image[name][k] for p in c.points] for c in (ANCHOR, TEST)
                  for k in ("bpp", "psnr-rgb")]
        expected[name] = bd_rate(*series)
    assert got.values == pytest.approx(expected)
    assert got.values["big1"] == pytest.approx(10.0) and got.values["thumb"] < -40
    assert got.mean == pytest.approx(np.mean(list(expected.values())))
    assert got.median == pytest.approx(statistics.median(expected.values()))
    assert got.interval == bootstrap_interval(list(expected.values()), seed=0)
    assert got.used == 4


def test_the_mean_curve_is_ruled_by_the_thumbnail_and_per_image_is_not():
    # curve BD: the thumbnail's halved header dominates -> the test "saves" bits
    curve = render_leaderboard([ANCHOR, TEST], META, anchor=("a", "up"))
    per = render_leaderboard([ANCHOR, TEST], META, anchor=("a", "up"), aggregate="per-image")
    row = [line for line in curve.splitlines() if line.startswith("| 1 ")][0]
    assert float(row.split("|")[3]) < -30  # BD of the mean curves
    assert "- BD aggregate: curve: BD of the mean curves" in curve
    assert "- Rate: mean of per-image bpp" in curve
    mean = per_image(ANCHOR, TEST, "psnr-rgb", "pchip")
    low, high = mean.interval
    cell = f"{mean.mean:+.2f} (median {mean.median:+.2f}; {low:+.2f} to {high:+.2f})"
    assert cell in per and "- BD aggregate: per-image: one BD per image" in per
    assert mean.median == pytest.approx(10.0)  # three of four images: +10 %
    # the note under the curve table names the image and the rule
    assert "- thumb dominates the mean rate of a+up, b+up: up to " in curve
    assert "more than 3× its share of the pixels and more than 25%" in curve
    assert "dominates" not in per


def test_pooled_rate_is_total_bits_over_total_pixels():
    pooled = pooled_curve(ANCHOR)
    for p, raw in zip(pooled.points, ANCHOR.points):
        bits = sum(c["bits"] for c in raw.per_image.values())
        assert p.values["bpp"] == pytest.approx(bits / sum(PIXELS.values()))
        assert p.values["bpp"] < raw.values["bpp"] / 5  # the mean is the thumbnail's
    board = render_leaderboard([ANCHOR, TEST], META, anchor=("a", "up"), rate="pooled")
    assert "- Rate: pooled: total bits / total pixels" in board
    row = [line for line in board.splitlines() if line.startswith("| 1 ")][0]
    assert 5 < float(row.split("|")[3]) < 12  # pooled: the photos' +10 % dominates


def test_the_dominance_rule():
    (found,) = dominant_images(ANCHOR)
    assert found.image == "thumb" and found.rate_share > 0.25
    assert found.rate_share > 3 * found.pixel_share
    assert found.pixel_share == pytest.approx(PIXELS["thumb"] / sum(PIXELS.values()))
    even = Curve("d", "c", "s", [Point(1, {}, per_image={
        "x": {"bits": 100.0, "bpp": 1.0}, "y": {"bits": 300.0, "bpp": 1.0}})])
    assert dominant_images(even) == []  # equal bpp: no image dominates


def test_summary_needs_three_images_and_every_image_when_asked():
    assert summarise({"a": 1.0, "b": None, "c": 3.0}).interval is None
    assert "2 of 3 image(s)" in summarise({"a": 1.0, "b": None, "c": 3.0}).why
    assert summarise({"a": 1.0, "b": 2.0, "c": 3.0}).mean == 2.0
    strict = summarise({"a": 1.0, "b": None, "c": 3.0, "d": 4.0}, require_all=True)
    assert strict.mean is None and "1 of 4 image(s) (first: b)" in strict.why
