"""Exports of stored results: CompressAI-layout JSON per combination, a flat CSV.

CompressAI's plot tool (``python -m compressai.utils.plot``) reads files shaped
``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}`` with one
list entry per quality, each the mean over the dataset's images. The CSV has one row
per (image, codec, quality, SR) with every metric as a column.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jcsr_bench.identity import safe_filename
from jcsr_bench.results import Curve

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
    """One combination in CompressAI's results layout (``None`` = n/a, reasons alongside)."""
    metrics: list[str] = []
    for point in curve.points:
        metrics.extend(m for m in point.values if m not in metrics)
    results: dict[str, list[Any]] = {"quality": [p.quality for p in curve.points]}
    for metric in metrics:
        key = COMPRESSAI_KEYS.get(metric, metric)
        results[key] = [_json_value(p.values.get(metric)) for p in curve.points]
    reasons = {
        COMPRESSAI_KEYS.get(m, m): {str(p.quality): p.reasons[m] for p in curve.points
                                    if m in p.reasons}
        for m in metrics if any(m in p.reasons for p in curve.points)
    }
    payload: dict[str, Any] = {
        "name": curve.label,
        "description": description or f"{curve.label} on {curve.dataset}",
        "dataset": curve.dataset,
        "images": [p.images for p in curve.points],
        "results": results,
    }
    if reasons:
        payload["n/a"] = reasons
    return payload


def write_compressai_json(curves: Iterable[Curve], out_dir: Path,
                          description: str = "") -> list[Path]:
    """``out_dir/<dataset>/<codec>+<sr>.json`` per curve; returns the files written."""
    paths = []
    for curve in curves:
        path = Path(out_dir) / safe_filename(curve.dataset) / f"{safe_filename(curve.label)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"{description}; " if description else ""
        payload = compressai_json(curve, f"{text}dataset {curve.dataset}, codec {curve.codec}, "
                                         f"SR {curve.sr}")
        path.write_text(json.dumps(payload, indent=2) + "\n")
        paths.append(path)
    return paths


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    """Flat per-image CSV (``Store.rows`` layout); n/a reasons in ``<metric> reason``."""
    rows = list(rows)
    metrics = [m for m in FIRST_COLUMNS if any(m in r["values"] for r in rows)]
    for row in rows:
        metrics.extend(m for m in row["values"] if m not in metrics)
    reason_columns = [m for m in metrics if any(m in r["reasons"] for r in rows)]
    header = ["dataset", "image", "codec", "quality", "sr", "status", "error", *metrics,
              *(f"{m} reason" for m in reason_columns)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            values = ["" if row["values"].get(m) is None else repr(float(row["values"][m]))
                      for m in metrics]
            writer.writerow([row["dataset"], row["image"], row["codec"], row["quality"],
                             row["sr"], row["status"], row["error"] or "", *values,
                             *(row["reasons"].get(m, "") for m in reason_columns)])
    return path
