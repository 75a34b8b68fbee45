"""The HTML report: one self-contained page a person opens from ``file://``.

Everything it needs is inside the file: plotly.js inlined, images as ``data:`` URIs, a
strict Content-Security-Policy ``<meta>`` that forbids every fetch (a stray request
fails as a console error instead of leaving the machine). The page is a pure function
of the store like the Markdown leaderboard: the same store gives the same bytes (no
clock, no paths of this machine beyond what the runs recorded, sorted JSON).

It holds, per dataset: the leaderboard with BD columns for every quality metric in the
store, the BD numbers precomputed against each combination as anchor with the
Markdown leaderboard's own code (so the anchor switch shows exactly what
``jcsr-bench leaderboard --anchor X`` prints), every n/a with its reason; RD curves per
metric (mean, or one image's curve via a chooser), the perception–distortion view when
a perceptual distance was computed; an image comparison (a swipe slider between any
two of the ground truth and each stored cell, on a pannable crop) of the images whose
recomputed outputs are passed in (:func:`collect_images`, which takes the recomputing
object from the caller: report never imports run); and the runs' provenance.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jcsr_bench.imaging.lr import mod_crop
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.report.coverage import FolderView
from jcsr_bench.report.leaderboard import METHOD_TEXT, _bd_columns, _bd_pair
from jcsr_bench.results.curves import Curve
from jcsr_bench.results.labels import (
    PERCEPTUAL_METRICS,
    QUALITY_METRICS,
    RATE,
    reported_metrics,
    spec,
)
from jcsr_bench.results.store import quality_text
from jcsr_bench.results.stored_cells import StoredCell, read_cells

__all__ = ["CSP", "IMAGE_BUDGET", "ImageView", "collect_images", "quality_metrics",
           "render_report"]

#: Nothing may be fetched: scripts and styles are inline, images and fonts data: URIs.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'none'; form-action 'none'")
#: Stored values that are not quality metrics (rates, timings).
NOT_QUALITY = frozenset({RATE, "bpp_lr", "bits", "encode_s", "decode_s", "sr_s"})
#: Bytes of PNG data the run's own report embeds before it stops adding images
#: (``report --images`` has no budget): keeps the samples report under 10 MB.
IMAGE_BUDGET = 3_500_000
PAN = 1.5  # the pannable window is PAN x the crop's side (clamped to the image)
_DIGITS = 6  # significant digits of the per-image numbers in the page


def quality_metrics(curves: Sequence[Curve]) -> list[str]:
    """Every quality metric stored (a value or its n/a reason) and the Markdown
    leaderboard's: the known ones in their table's order, then any other stored value
    that is neither a rate nor a timing."""
    present: dict[str, None] = dict.fromkeys(reported_metrics(curves))
    for c in curves:
        for p in c.points:
            present.update(dict.fromkeys([*p.values, *p.reasons]))
    known = [m for m in QUALITY_METRICS if m in present]
    return known + sorted(m for m in present if m not in QUALITY_METRICS
                          and m not in NOT_QUALITY)


# -- images -----------------------------------------------------------------------------------
@dataclass
class ImageView:
    """One image's comparison data: the ground truth and every stored cell on a window
    around the crop, as PNG data URIs, with the cells' stored scores."""

    dataset: str
    name: str
    size: tuple[int, int]  # HR width, height
    crop: tuple[int, int, int, int]  # default view (x, y, w, h), HR pixels
    window: tuple[int, int, int, int]  # what the PNGs hold, HR pixels
    ground_truth: str  # data URI
    cells: list[dict[str, Any]] = field(default_factory=list)  # label, quality, uri, scores
    png_bytes: int = 0


def _png_uri(array: Any) -> tuple[str, int]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=9)
    data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii"), len(data)


def _window(crop: tuple[int, int, int, int], width: int, height: int
            ) -> tuple[int, int, int, int]:
    x, y, w, h = crop
    ww, wh = min(width, int(w * PAN)), min(height, int(h * PAN))
    wx = min(max(0, x - (ww - w) // 2), width - ww)
    wy = min(max(0, y - (wh - h) // 2), height - wh)
    return (wx, wy, ww, wh)


def collect_images(results: Path, recompute: Callable[[str, str, dict, dict], Any], *,
                   names: Sequence[str] | None = None, budget: int | None = IMAGE_BUDGET,
                   crop: tuple[int, int, int, int] | None = None) -> tuple[list[ImageView],
                                                                          list[str]]:
    """The images of the comparison view, recomputed as ``visual`` does; and notes.

    ``names`` (``NAME`` or ``DATASET/NAME``; ``["all"]`` = every image) picks them;
    without it, the images in store order while their PNG data stays within ``budget``
    bytes (the notes say which were left out and how to add them).
    """
    from jcsr_bench.imaging.images import to_numpy
    from jcsr_bench.report.visual import _scaled_crop, default_crop, validate_crop

    cells, runs, meta = read_cells(Path(results))
    pairs = list(dict.fromkeys((c.dataset, c.image) for c in cells))
    if names and list(names) != ["all"]:
        chosen = []
        for wanted in names:
            match = [p for p in pairs if p[1] == wanted or f"{p[0]}/{p[1]}" == wanted]
            if not match:
                from jcsr_bench.kit.suggest import did_you_mean

                raise JcsrError(f"--images {wanted!r}: not an image of this run's results."
                                + did_you_mean(wanted, sorted({p[1] for p in pairs})))
            chosen += [p for p in match if p not in chosen]
        pairs, budget = chosen, None
    elif names:
        budget = None
    views: list[ImageView] = []
    notes: list[str] = []
    used = 0
    for index, (dataset, name) in enumerate(pairs):
        mine = [c for c in cells if (c.dataset, c.image) == (dataset, name) and c.status == "ok"]
        if not mine:
            continue
        # stop before recomputing an image that would not fit (judged by the mean so far)
        if budget is not None and views and used + used / len(views) > budget:
            notes.append(_left_out(views, pairs, index, budget))
            break
        work = recompute(dataset, name, runs, meta)
        hr = mod_crop(work.hr, work.scale(mine[0]))
        height, width = int(hr.shape[-2]), int(hr.shape[-1])
        box = (validate_crop(crop, width, height) if crop is not None
               else default_crop(width, height))
        win = _window(box, width, height)
        wx, wy, ww, wh = win
        gt_uri, size = _png_uri(to_numpy(hr[:, wy:wy + wh, wx:wx + ww]))
        view = ImageView(dataset, name, (width, height), box, win, gt_uri, png_bytes=size)
        for cell in sorted(mine, key=lambda c: (c.codec, c.sr)):
            result, _ = work.output(cell)
            x, y, w, h = _scaled_crop(win, hr.shape, result.shape)
            uri, size = _png_uri(to_numpy(result[:, y:y + h, x:x + w]))
            view.png_bytes += size
            view.cells.append({"label": f"{cell.codec}+{cell.sr}", "quality": cell.quality,
                               "uri": uri, "scores": _scores(cell)})
        if budget is not None and views and used + view.png_bytes > budget:
            notes.append(_left_out(views, pairs, index, budget))
            break
        used += view.png_bytes
        views.append(view)
    return views, notes


def _left_out(views: list[ImageView], pairs: list[tuple[str, str]], index: int,
              budget: int) -> str:
    rest = [f"{d}/{n}" for d, n in pairs[index:]]
    return (f"the image comparison shows {len(views)} of {len(pairs)} images (about "
            f"{budget / 1e6:.1f} MB of images); add others with `jcsr-bench report --images "
            f"NAME` (left out: {', '.join(rest)})")


def _scores(cell: StoredCell) -> dict[str, Any]:
    return {m: (v if v is None or math.isfinite(v) else str(v))
            for m, v in sorted(cell.values.items())
            if m not in NOT_QUALITY or m == RATE}


# -- data of the page ------------------------------------------------------------------------
def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{_DIGITS}g}")


def _transformed(metric: str, value: float | None) -> float | None:
    transform = spec(metric).transform
    if value is None:
        return None
    if transform is not None:
        try:
            value = transform(value)
        except ValueError:
            return None
    return _round(value)


def _cell_json(cell: Any) -> list[str]:
    """[text, reason] of a BD cell (the Markdown's text; n/a with its reason)."""
    if cell.value is not None:
        return [cell.text, ""]
    parts = [cell.reason, *(f"{who} {why}" for who, why in cell.gaps)]
    return ["n/a", "; ".join(p for p in parts if p)]


def _points_text(curve: Curve, metrics: Sequence[str]) -> list[str]:
    usable = [p for p in curve.points
              if all(p.values.get(m) is not None for m in (RATE, *metrics))]
    reasons = sorted({f"{m} n/a at quality {quality_text(p.quality)}: "
                      f"{p.reasons.get(m) or 'no value stored'}"
                      for p in curve.points for m in (RATE, *metrics)
                      if p.values.get(m) is None})
    text = str(len(curve.points)) if len(usable) == len(curve.points) \
        else f"{len(usable)}/{len(curve.points)}"
    return [text, "; ".join(reasons[:6]) + (" …" if len(reasons) > 6 else "")]


def _dataset_data(dataset: str, curves: list[Curve], rows: list[dict], metrics: list[str],
                  method: str, info: Mapping) -> dict[str, Any]:
    labels = [c.label for c in curves]
    bd: dict[str, dict[str, list[list[str]]]] = {}
    for anchor in labels:
        anchor_curve = curves[labels.index(anchor)]
        bd[anchor] = {}
        for curve in curves:
            if curve.label == anchor:
                continue
            cells = []
            for m in metrics:
                pair = _bd_pair(anchor_curve, curve, m, method)
                cells += [_cell_json(pair.rate), _cell_json(pair.quality)]
            bd[anchor][curve.label] = cells
    combos = []
    for c in curves:
        rates = [p.values[RATE] for p in c.points if p.values.get(RATE) is not None]
        combos.append({
            "label": c.label, "codec": c.codec, "sr": c.sr,
            "points": _points_text(c, metrics),
            "bpp_range": (f"{min(rates):.4f}–{max(rates):.4f}" if rates else "n/a"),
            "q": [p.quality for p in c.points],
            "n": [p.images for p in c.points],
            "bpp": [_round(p.values.get(RATE)) for p in c.points],
            "raw": {m: [_round(p.values.get(m)) for p in c.points] for m in metrics},
            "y": {m: [_transformed(m, p.values.get(m)) for p in c.points] for m in metrics},
        })
    images = sorted({r["image"] for r in rows})
    per = {(r["codec"], r["sr"], quality_text(r["quality"]), r["image"]): r for r in rows}
    per_image: dict[str, Any] = {"images": images, "bpp": [], "y": {m: [] for m in metrics}}
    for c in curves:
        qs = [quality_text(p.quality) for p in c.points]
        grid = [[per.get((c.codec, c.sr, q, name)) for q in qs] for name in images]
        per_image["bpp"].append([[_round((r or {}).get("values", {}).get(RATE)) for r in line]
                                 for line in grid])
        for m in metrics:
            per_image["y"][m].append([[_transformed(m, (r or {}).get("values", {}).get(m))
                                       for r in line] for line in grid])
    return {"name": dataset, "images": (info.get(dataset) or {}).get("images"),
            "combos": combos, "bd": bd, "per_image": per_image}


def _metric_data(metrics: Sequence[str]) -> list[dict[str, str]]:
    out = []
    for m in metrics:
        s = spec(m)
        unit = f" ({s.unit})" if s.unit else ""
        out.append({"key": m, "short": s.short, "axis": s.axis,
                    "columns": _bd_columns([m]), "unit": unit,
                    "perceptual": m in PERCEPTUAL_METRICS})
    return out


def _provenance(view: FolderView, runs: Sequence[dict]) -> dict[str, Any]:
    meta = view.meta
    return {
        "harness": meta.get("harness_version"), "device": meta.get("device"),
        "date": meta.get("date"), "plugins": meta.get("plugin_versions") or {},
        "datasets": meta.get("datasets") or {},
        "registry_files": meta.get("registry_files") or [],
        "conventions": meta.get("conventions") or "",
        "skipped": [{"kind": s.get("kind"), "name": s.get("name"), "reason": s.get("reason")}
                    for s in meta.get("skipped") or []],
        "runs": [{"id": r["id"], "date": r["meta"].get("date") or r.get("started"),
                  "command": r["meta"].get("command") or "not recorded (run before the "
                  "harness recorded command lines)",
                  "environment": r["meta"].get("environment") or {},
                  "versions": r["meta"].get("versions") or {}} for r in runs],
    }


def _script_json(value: Any) -> str:
    """JSON that can sit inside ``<script>``: never ends it, never opens a comment."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_report(view: FolderView, *, runs: Sequence[dict] = (), method: str = "pchip",
                  images: Sequence[ImageView] = (), exports: Sequence[str] = (),
                  notes: Sequence[str] = (), title: str = "jcsr-bench report") -> str:
    """The report page as text (module doc); deterministic for the same inputs."""
    import jinja2
    import plotly.offline

    if not view.curves or view.anchor is None:
        raise JcsrError("no results to render: the results store holds no curves")
    metrics = quality_metrics(view.curves)
    datasets = list(dict.fromkeys(c.dataset for c in view.curves))
    info = view.meta.get("datasets") or {}
    data = {
        "anchor": view.anchor.label, "anchor_note": view.anchor.note,
        "method": METHOD_TEXT.get(method, method),
        "metrics": _metric_data(metrics),
        "datasets": [_dataset_data(d, [c for c in view.curves if c.dataset == d],
                                   [r for r in view.rows if r["dataset"] == d and
                                    r["status"] == "ok"], metrics, method, info)
                     for d in datasets],
        "images": [{"dataset": v.dataset, "name": v.name, "size": v.size, "crop": v.crop,
                    "window": v.window, "gt": v.ground_truth, "cells": v.cells}
                   for v in images],
        "provenance": _provenance(view, runs),
        "exports": sorted(exports), "notes": list(notes),
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jcsr_bench.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.html.j2").render(
        title=title, csp=CSP, data=data, data_json=_script_json(data),
        plotlyjs=plotly.offline.get_plotlyjs().replace("</script", "<\\/script"))
