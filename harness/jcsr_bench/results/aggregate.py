"""How a dataset's per-image results become one BD number, and when one image dominates.

Three ways, all shared by the leaderboards (``--bd-aggregate``, ``--rate``) and CI's
``compare`` (its per-image interval):

- ``curve`` (the default, the paper's and CompressAI's convention): the BD of the mean
  curves, each point the mean of per-image bpp and quality;
- ``per-image`` (the JPEG AI reporting): one BD-rate per image, then their mean and
  median, with a seeded bootstrap interval of the mean over images -- an image cannot
  dominate it, whatever its size;
- rate ``pooled``: each point's rate is total bits / total pixels instead of the mean
  of per-image bpp (quality stays the mean of per-image values).

A mean of per-image bpp weighs a 40x30 thumbnail like a 4K photo, and fixed header
bits make a small image's bpp large: :func:`dominant_images` names the images whose
share of a curve's mean rate is far above their share of the pixels.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from jcsr_bench.results.bd import BDError, bd_quality, bd_rate
from jcsr_bench.results.curves import Curve

__all__ = ["AGGREGATES", "DOMINANCE_FACTOR", "DOMINANCE_SHARE", "MIN_IMAGES", "RATES",
           "Dominant", "PerImage", "bootstrap_interval", "dominant_images",
           "image_series", "per_image", "pooled_curve", "summarise"]

AGGREGATES = ("curve", "per-image")
RATES = ("mean", "pooled")
#: Fewest images a per-image interval (or mean) rests on; below it, none is given.
MIN_IMAGES = 3
#: An image dominates a curve's mean rate when its share of it is more than
#: DOMINANCE_FACTOR times its share of the pixels *and* more than DOMINANCE_SHARE.
DOMINANCE_FACTOR = 3.0
DOMINANCE_SHARE = 0.25
RATE = "bpp"


def bootstrap_interval(values: Sequence[float], *, seed: int = 0, resamples: int = 2000,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over ``values`` (images), seeded."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PerImage:
    """Per-image BD values of one metric and their summary over images."""

    values: dict[str, float | None]  # image -> BD value (None: undefined for that image)
    mean: float | None = None
    median: float | None = None
    interval: tuple[float, float] | None = None
    why: str = ""  # why mean / interval are missing

    @property
    def used(self) -> int:
        """How many images the summary rests on."""
        return sum(v is not None for v in self.values.values())

    def interval_text(self) -> str:
        """``[low, high] (n images)``, or ``n/a (why)``."""
        if self.interval is None:
            return f"n/a ({self.why})"
        return f"[{self.interval[0]:+.2f}, {self.interval[1]:+.2f}] ({self.used} images)"


def summarise(values: Mapping[str, float | None], *, seed: int = 0,
              require_all: bool = False) -> PerImage:
    """Mean, median and bootstrap interval of the defined values, none on fewer than
    :data:`MIN_IMAGES` images; ``require_all``: none unless every image has a value (a
    table's mean never silently covers fewer images than its heading counts)."""
    values = dict(values)
    defined = [v for v in values.values() if v is not None]
    total = len(values)
    if require_all and len(defined) < total:
        first = next(name for name, v in values.items() if v is None)
        return PerImage(values, why=f"BD undefined for {total - len(defined)} of {total} "
                        f"image(s) (first: {first})")
    if len(defined) < MIN_IMAGES:
        return PerImage(values, why=f"{len(defined)} of {total} image(s) have a per-image "
                        f"BD-rate; at least {MIN_IMAGES} are needed")
    return PerImage(values, math.fsum(defined) / len(defined), statistics.median(defined),
                    bootstrap_interval(defined, seed=seed))


def rd_pairs(pairs: Iterable[tuple[Any, Any]], transform: Callable[[float], float]
             ) -> tuple[list[float], list[float]]:
    """(rates, qualities) of ``(rate, value)`` pairs, the value on its BD axis
    (``transform``); pairs missing either, or off the axis, are left out."""
    rates, quals = [], []
    for r, q in pairs:
        if r is None or q is None:
            continue
        try:
            q = transform(q)
        except ValueError:
            continue
        if math.isfinite(q):
            rates.append(r)
            quals.append(q)
    return rates, quals


def image_series(curve: Curve, image: str, metric: str) -> tuple[list[float], list[float]]:
    """(bpp, quality) of one image along ``curve`` (quality as BD uses it); points where
    the image lacks a value are left out."""
    from jcsr_bench.results.labels import spec

    transform = spec(metric).transform or (lambda v: v)
    values = [p.per_image.get(image) or {} for p in curve.points]
    return rd_pairs(((v.get(RATE), v.get(metric)) for v in values), transform)


def per_image(anchor: Curve, test: Curve, metric: str, method: str, *, seed: int = 0,
              quality: bool = False) -> PerImage:
    """Per-image BD-rate (``quality``: BD-quality) of ``test`` vs ``anchor``, summarised
    over the images both curves hold, requiring every image."""
    fn = bd_quality if quality else bd_rate
    images = list(dict.fromkeys(name for p in anchor.points for name in p.per_image))
    values: dict[str, float | None] = {}
    for image in images:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an overlap warning per image is noise
            try:
                values[image] = fn(*image_series(anchor, image, metric),
                                   *image_series(test, image, metric), method=method)
            except BDError:
                values[image] = None
    return summarise(values, seed=seed, require_all=True)


def _pixels(values: Mapping[str, float | None]) -> float | None:
    bits, bpp = values.get("bits"), values.get(RATE)
    return bits / bpp if bits and bpp else None


def pooled_curve(curve: Curve) -> Curve:
    """``curve`` with each point's rate = total bits / total pixels of its images (n/a
    when an image lacks its bits)."""
    points = []
    for p in curve.points:
        cells = list(p.per_image.values())
        pixels = [_pixels(v) for v in cells]
        values = dict(p.values)
        reasons = dict(p.reasons)
        if p.values.get(RATE) is None or not cells or None in pixels:
            values[RATE] = None
            reasons.setdefault(RATE, "pooled rate needs every image's bits and bpp")
        else:
            values[RATE] = math.fsum(v["bits"] for v in cells) / math.fsum(pixels)
        points.append(replace(p, values=values, reasons=reasons))
    return replace(curve, points=points)


@dataclass(frozen=True)
class Dominant:
    """An image whose share of a curve's mean rate is far above its share of pixels."""

    image: str
    rate_share: float
    pixel_share: float

    def text(self) -> str:
        return (f"{self.image} ({self.rate_share:.0%} of the mean bpp, "
                f"{self.pixel_share:.1%} of the pixels)")


def dominant_images(curve: Curve) -> list[Dominant]:
    """Images whose share of the curve's mean bpp (summed over its points) is more than
    DOMINANCE_FACTOR x their share of the pixels and more than DOMINANCE_SHARE."""
    rate: dict[str, float] = {}
    pixels: dict[str, float] = {}
    for p in curve.points:
        for name, values in p.per_image.items():
            if values.get(RATE) is not None:
                rate[name] = rate.get(name, 0.0) + values[RATE]
            px = _pixels(values)
            if px:
                pixels.setdefault(name, px)
    total_rate, total_px = math.fsum(rate.values()), math.fsum(pixels.values())
    if len(pixels) < 2 or not total_rate or not total_px:
        return []
    found = []
    for name, r in rate.items():
        if name not in pixels:
            continue
        share, px_share = r / total_rate, pixels[name] / total_px
        if share > DOMINANCE_SHARE and share > DOMINANCE_FACTOR * px_share:
            found.append(Dominant(name, share, px_share))
    return sorted(found, key=lambda d: -d.rate_share)

