"""Small wording helpers shared by reports: counts with their noun, durations with units."""

from __future__ import annotations

import math

__all__ = ["count", "format_seconds"]

_UNITS = ((1e-6, "µs"), (1e-3, "ms"), (1.0, "s"))  # smallest first


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 image"``, ``"7 images"`` (``plural`` for irregular nouns)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def format_seconds(seconds: float) -> str:
    """A duration with an adaptive unit and 3 significant digits: ``412 µs``, ``4.12 ms``,
    ``1.23 s`` (so that fast stages do not all print as 0.000)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "n/a"
    if seconds == 0:
        return "0 s"
    for scale, unit in _UNITS:
        text = f"{seconds / scale:.3g}"
        if float(text) < 1000:  # 999.7 µs would round to "1e+03 µs": use ms instead
            return f"{text if 'e' not in text else f'{seconds / scale:.3f}'} {unit}"
    return f"{seconds:.0f} s"
