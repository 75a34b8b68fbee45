"""Exports of stored results: CompressAI-layout JSON per combination, a flat CSV.

CompressAI's plot tool (``python -m compressai.utils.plot``) reads files shaped
``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}`` with one
list entry per quality, each the mean over the dataset's images; it computes on those
lists, so ``results`` never holds a ``null`` (what is n/a is kept in sibling keys, see
:func:`compressai_json`). The CSV has one row per (image, codec, quality, SR) with
every metric as a column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jcsr_bench.kit.atomic import atomic_write
from jcsr_bench.kit.identity import safe_filename
from jcsr_bench.results.curves import Curve, Point

# jcsr-bench metric name -> CompressAI results key (timings use CompressAI's names)
COMPRESSAI_KEYS = {
    "bpp": "bpp",
    "psnr-rgb": "psnr-rgb",
    "ms-ssim-rgb": "ms-ssim-rgb",
    "psnr-y": "psnr-y",
    "bpp_lr": "bpp_lr",
    "bits": "bits",
    "encode_s": "encoding_time",
    "decode_s": "decoding_time",
    "sr_s": "sr_time",
}
FIRST_COLUMNS = ["bits", "bpp", "bpp_lr", "psnr-rgb", "psnr-y", "ms-ssim-rgb",
                 "encode_s", "decode_s", "sr_s"]


def _json_value(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def compressai_json(curve: Curve, description: str = "") -> dict[str, Any]:
    """One combination in CompressAI's results layout, valid for its plot tool.

    ``results`` holds only numbers: the points whose rate is known, and of the metrics
    only those defined at every one of these points (the plot tool computes on the
    lists and fails on ``null``). Everything left out is kept beside it, in keys the
    tool ignores: ``incomplete`` (a left-out metric's values, ``null`` where n/a, aligned
    with ``results.quality``), ``n/a`` (metric -> quality -> why) and ``points_left_out``
    (quality -> why the point has no rate).
    """
    metrics: list[str] = []
    for point in curve.points:
        metrics.extend(m for m in point.values if m not in metrics)
    kept = [p for p in curve.points if _json_value(p.values.get("bpp")) is not None]
    results: dict[str, list[Any]] = {"quality": [p.quality for p in kept]}
    incomplete: dict[str, list[Any]] = {}
    for metric in metrics:
        values = [_json_value(p.values.get(metric)) for p in kept]
        key = COMPRESSAI_KEYS.get(metric, metric)
        if all(v is not None for v in values):
            results[key] = values
        elif any(v is not None for v in values):
            incomplete[key] = values
    reasons = {
        COMPRESSAI_KEYS.get(m, m): {str(p.quality): _why(p, m) for p in kept
                                    if _json_value(p.values.get(m)) is None}
        for m in metrics if COMPRESSAI_KEYS.get(m, m) not in results
    }
    left_out = {str(p.quality): _why(p, "bpp") for p in curve.points if p not in kept}
    payload: dict[str, Any] = {
        "name": curve.label,
        "description": description or f"{curve.label} on {curve.dataset}",
        "dataset": curve.dataset,
        "images": [p.images for p in kept],
        "results": results,
    }
    for key, value in (("incomplete", incomplete), ("n/a", {k: v for k, v in reasons.items()
                                                            if v}),
                       ("points_left_out", left_out)):
        if value:
            payload[key] = value
    return payload


def _why(point: Point, metric: str) -> str:
    if metric in point.reasons:
        return point.reasons[metric]
    value = point.values.get(metric)
    return "no value" if value is None else f"not a finite number ({value})"


def compressai_json_text(curve: Curve, description: str = "") -> str:
    """:func:`compressai_json` as strict JSON text (no NaN/Infinity), as written to disk."""
    return json.dumps(compressai_json(curve, description), indent=2, allow_nan=False) + "\n"


def compressai_json_path(curve: Curve) -> Path:
    """Where a curve's JSON goes, relative to the ``json/`` folder."""
    return Path(safe_filename(curve.dataset)) / f"{safe_filename(curve.label)}.json"


def compressai_exports(curves: Iterable[Curve], description: str = "") -> dict[Path, str]:
    """``{<dataset>/<codec>+<sr>.json: JSON text}`` for every curve (paths relative)."""
    return {compressai_json_path(c): compressai_json_text(c, _describe(c, description))
            for c in curves}


def write_compressai_json(curves: Iterable[Curve], out_dir: Path,
                          description: str = "") -> list[Path]:
    """``out_dir/<dataset>/<codec>+<sr>.json`` per curve (atomic); returns the files."""
    paths = []
    for relative, text in compressai_exports(curves, description).items():
        atomic_write(Path(out_dir) / relative, text)
        paths.append(Path(out_dir) / relative)
    return paths


def _describe(curve: Curve, description: str) -> str:
    text = f"{description}; " if description else ""
    return f"{text}dataset {curve.dataset}, codec {curve.codec}, SR {curve.sr}"


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """Flat per-image CSV (``Store.rows`` layout); n/a reasons in ``<metric> reason``."""
    rows = list(rows)
    metrics = [m for m in FIRST_COLUMNS if any(m in r["values"] for r in rows)]
    for row in rows:
        metrics.extend(m for m in row["values"] if m not in metrics)
    reason_columns = [m for m in metrics if any(m in r["reasons"] for r in rows)]
    header = ["dataset", "image", "codec", "quality", "sr", "status", "error", *metrics,
              *(f"{m} reason" for m in reason_columns)]
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(header)
    for row in rows:
        values = ["" if row["values"].get(m) is None else repr(float(row["values"][m]))
                  for m in metrics]
        writer.writerow([row["dataset"], row["image"], row["codec"], row["quality"],
                         row["sr"], row["status"], row["error"] or "", *values,
                         *(row["reasons"].get(m, "") for m in reason_columns)])
    return handle.getvalue()


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    """:func:`csv_text` written atomically to ``path``."""
    atomic_write(path, csv_text(rows))
    return Path(path)
