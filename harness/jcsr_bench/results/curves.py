"""Aggregated results: one rate-distortion curve per combination (dataset, codec, SR).

The engine's store produces these; leaderboards, plots and exports consume them. A
point's value is the mean over the dataset's images of the per-image values
(CompressAI convention); ``None`` means "n/a", with the reason in ``reasons``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Point:
    quality: Any
    values: dict[str, float | None]  # metric name ("bpp", "psnr-rgb", ...) -> mean
    reasons: dict[str, str] = field(default_factory=dict)  # metric -> why it is n/a
    images: int = 0
    #: image -> its own values (ok cells only): for per-image BD, pooled rate, dominance
    per_image: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class Curve:
    dataset: str
    codec: str
    sr: str
    points: list[Point]

    @property
    def label(self) -> str:
        """How a combination is named in tables and legends: ``codec+sr``."""
        return f"{self.codec}+{self.sr}"

    def series(self, rate: str, quality: str) -> tuple[list[float], list[float]]:
        """(rates, qualities) over the points where both values exist."""
        pairs = [
            (p.values[rate], p.values[quality])
            for p in self.points
            if p.values.get(rate) is not None and p.values.get(quality) is not None
        ]
        return [r for r, _ in pairs], [q for _, q in pairs]
