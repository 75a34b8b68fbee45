"""Markdown leaderboards: BD metrics of every combination against an anchor.

Rendering is a pure function of the stored results (curves + run metadata): the same
input gives the same bytes, so ``jcsr-bench leaderboard`` can re-render a committed
leaderboard without recomputing anything and a diff shows only real changes. Nothing
here reads the clock or the environment; the date comes from the run's metadata.

Names that come from plugins or registries are escaped (:mod:`.markdown`), so a type
called ``a|b<script>`` shows literally in one cell. Every "n/a" carries a numbered
marker (``n/a [1]``) whose reason is listed under its table, so cells stay narrow and
no reason is hidden in the store.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.report.coverage import load_view
from jcsr_bench.report.markdown import escape
from jcsr_bench.report.text import count, format_seconds
from jcsr_bench.results.aggregate import (
    AGGREGATES,
    DOMINANCE_FACTOR,
    DOMINANCE_SHARE,
    RATES,
    Dominant,
    dominant_images,
    per_image,
    pooled_curve,
)
from jcsr_bench.results.bd import METHODS, BDError, BDOverlapWarning, bd_quality, bd_rate
from jcsr_bench.results.curves import Curve
from jcsr_bench.results.labels import (
    JPEG_AI_CONVENTIONS,
    JPEG_AI_METRICS,
    PERCEPTUAL_CONVENTIONS,
    PERCEPTUAL_METRICS,
    QUALITY_METRICS,
    RATE,
    TABLE_METRICS,
    QualitySpec,
    parse_label,
    present_metrics,
    rd_series,
    reported_metrics,
    spec,
)

__all__ = [
    "QUALITY_METRICS",
    "QualitySpec",
    "leaderboard_from_store",
    "parse_label",
    "parse_pairs",
    "rd_series",
    "render_leaderboard",
    "reported_metrics",
    "render_pairs",
    "reporting_of",
    "table_metrics",
]

#: A weight file named in a "missing weights" reason (offline or failed-download wording).
_WEIGHT_FILE = re.compile(r"(?:weight file|file name) ([\w.+-]+\.(?:pth\.tar|pth|pt|ckpt|"
                          r"safetensors|bin))")
TIMINGS = (("encode_s", "Encode"), ("decode_s", "Decode"), ("sr_s", "SR"))
NOT_RANKED = "—"


AGGREGATE_TEXT = {
    "curve": "curve: BD of the mean curves, each point the mean over images (the paper's "
             "and CompressAI's convention; change with --bd-aggregate per-image)",
    "per-image": "per-image: one BD per image, then their mean over images (JPEG AI "
                 "reporting); BD-Rate cells add the median and the bootstrap 95 % interval "
                 "of the mean (seed 0); no image can dominate it",
}
RATE_TEXT = {
    "mean": "mean of per-image bpp (the paper's and CompressAI's convention)",
    "pooled": "pooled: total bits / total pixels of the images at each point (--rate "
              "pooled; quality stays the mean of per-image values)",
}
DOMINANCE_RULE = (f"an image dominates when its share of a curve's mean bpp (summed over "
                  f"the points) is more than {DOMINANCE_FACTOR:g}× its share of the pixels "
                  f"and more than {DOMINANCE_SHARE:.0%}")

METHOD_TEXT = {
    "pchip": "pchip: PCHIP fit on log10(bpp), integrated exactly (JVET/VCEG Excel method)",
    "akima": "akima: Akima spline fit on log10(bpp), integrated exactly",
    "cubic": "cubic: cubic polynomial fit on log10(bpp) (VCEG-M33; least squares beyond 4 points)",
}

DEFAULT_CONVENTIONS = (
    "bpp = 8 × payload bytes / HR pixels (cost per output pixel); "
    "PSNR-RGB on 8-bit RGB, peak 255, mean of per-image values; "
    "MS-SSIM by pytorch-msssim on 8-bit RGB (data range 255), mean of per-image values, "
    "BD on −10·log10(1 − MS-SSIM) dB; "
    "Encode, Decode and SR are mean wall-clock times per image"
)


def parse_pairs(specs: Iterable[str]) -> list[tuple[str, str]]:
    """``["test:anchor", ...]`` (``codec+sr`` each side) -> ``[(test, anchor), ...]``."""
    pairs = []
    for text in specs:
        test, sep, anchor = text.partition(":")
        if not sep or not test or not anchor:
            raise JcsrError(
                f"--pairs {text!r}: write TEST:ANCHOR, each CODEC+SR, "
                "e.g. bmshj+esrgan-b2:bmshj+esrgan-b1"
            )
        parse_label(test)
        parse_label(anchor)
        pairs.append((test, anchor))
    return pairs


# --------------------------------------------------------------------------- BD cells


@dataclass(frozen=True)
class _Cell:
    """One BD number: its value and text, or why it is undefined."""

    value: float | None
    text: str = ""  # e.g. "-4.42" or "-44.10 (overlap 54%)"
    reason: str = ""  # why it is n/a
    gaps: tuple[tuple[str, str], ...] = ()  # ("anchor"|"test", why a point is left out)
    overlap: bool = False

    def render(self, notes: _Notes, points: Mapping[str, str] | None = None) -> str:
        """The cell text; an n/a refers to its reason, and for the values the curves
        lack to the curve's own note (``points``: "anchor"/"test" -> "[k]")."""
        if self.value is not None:
            return self.text
        parts = [self.reason]
        see: dict[str, list[str]] = {}  # note -> whose values it explains
        for who, why in self.gaps:
            ref = (points or {}).get(who)
            if ref:
                see.setdefault(ref, []).append(who)
            else:
                parts.append(f"{who} {why}")
        parts += [f"{' and '.join(whose)} values n/a: see note {ref.strip('[]')}"
                  for ref, whose in see.items()]
        return f"n/a {notes.ref('; '.join(parts))}"


@dataclass(frozen=True)
class _BD:
    rate: _Cell
    quality: _Cell


class _Notes:
    """Numbered reasons for a table's n/a cells, listed under it (same reason, same number)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def lines(self) -> list[str]:
        if not self.texts:
            return []
        return ["Notes:", "", *(f"- [{i}] {escape(t)}" for i, t in enumerate(self.texts, 1)),
                ""]


def _bd_pair(anchor: Curve | None, test: Curve, metric: str, method: str) -> _BD:
    """BD-rate and BD-quality of ``test`` vs ``anchor``: numbers, or the reason."""
    if anchor is None:
        na = _Cell(None, reason="the anchor was not evaluated on this dataset")
        return _BD(na, na)
    ar, aq, anotes = rd_series(anchor, metric)
    tr, tq, tnotes = rd_series(test, metric)
    out: dict[str, _Cell] = {}
    for name, fn, fmt in (("rate", bd_rate, "{:+.2f}"), ("quality", bd_quality, "{:+.3f}")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BDOverlapWarning)
            try:
                value = fn(ar, aq, tr, tq, method=method)
            except BDError as exc:
                gaps = [("anchor", n) for n in anotes[:1]] + [("test", n) for n in tnotes[:1]]
                out[name] = _Cell(None, reason=str(exc), gaps=tuple(gaps))
                continue
        text = fmt.format(value)
        overlap = [w.message for w in caught if isinstance(w.message, BDOverlapWarning)]
        if overlap:
            text += f" (overlap {overlap[0].overlap:.0%})"
        out[name] = _Cell(value, text, overlap=bool(overlap))
    return _BD(out["rate"], out["quality"])


def _per_image_pair(anchor: Curve | None, test: Curve, metric: str, method: str) -> _BD:
    """Mean of per-image BD-rate (with median and interval) and of per-image BD-quality."""
    if anchor is None:
        na = _Cell(None, reason="the anchor was not evaluated on this dataset")
        return _BD(na, na)
    rate = per_image(anchor, test, metric, method)
    quality = per_image(anchor, test, metric, method, quality=True)
    if rate.mean is None:
        rate_cell = _Cell(None, reason=f"per-image BD-rate: {rate.why}")
    else:
        low, high = rate.interval or (math.nan, math.nan)
        rate_cell = _Cell(rate.mean, f"{rate.mean:+.2f} (median {rate.median:+.2f}; "
                          f"{low:+.2f} to {high:+.2f})")
    quality_cell = (_Cell(None, reason=f"per-image BD-quality: {quality.why}")
                    if quality.mean is None else _Cell(quality.mean, f"{quality.mean:+.3f}"))
    return _BD(rate_cell, quality_cell)


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise JcsrError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _dominance_lines(by_label: Mapping[str, Curve]) -> list[str]:
    """The note under a table naming images that dominate a curve's mean rate."""
    found: dict[str, list[tuple[str, Dominant]]] = {}
    for label, curve in by_label.items():
        for d in dominant_images(curve):
            found.setdefault(d.image, []).append((label, d))
    lines = []
    for image, items in found.items():
        worst = max(items, key=lambda item: item[1].rate_share)[1]
        labels = ", ".join(label for label, _ in items)
        lines.append(f"- {escape(image)} dominates the mean rate of {escape(labels)}: up to "
                     f"{worst.rate_share:.0%} of the mean bpp from {worst.pixel_share:.1%} "
                     "of the pixels")
    if not lines:
        return []
    return ["Rate dominated by one image (" + DOMINANCE_RULE + "; the mean of per-image "
            "bpp weighs a thumbnail like a large photo: compare with --bd-aggregate "
            "per-image or --rate pooled):", "", *lines, ""]


def table_metrics(curves: Iterable[Curve]) -> tuple[str, ...]:
    """The quality metrics the results hold (a value or an n/a reason), in table order:
    PSNR-RGB, PSNR-Y, MS-SSIM (or, without them, the two that lead instead), then the
    perceptual distances holding a value."""
    held = {m for c in curves for p in c.points for m in (*p.values, *p.reasons)}
    valued = {m for c in curves for p in c.points for m, v in p.values.items()
              if v is not None}
    core = [m for m in ("psnr-rgb", "psnr-y", "ms-ssim-rgb") if m in held]
    if not core:  # e.g. --metrics jpeg-ai: the metrics that lead instead (labels)
        core = [m for m in reported_metrics(curves)[:2] if m in held]
    return (*core, *(m for m in reported_metrics(curves) if m in PERCEPTUAL_METRICS
                     and m in valued and m not in core))


# ------------------------------------------------------------------------- header


def _header(title: str, meta: Mapping, method: str, anchor_text: str, datasets: Sequence[str],
            legend: Sequence[str] = (), reporting: Sequence[str] = ()) -> list[str]:
    plugins = meta.get("plugin_versions") or {}
    plugin_text = (
        ", ".join(f"{escape(n)} {escape(v)}" for n, v in sorted(plugins.items())) or "none"
    )
    info = meta.get("datasets") or {}
    lines = [
        f"# {title}",
        "",
        f"- Harness: jcsr-bench {escape(meta.get('harness_version', 'unknown'))}",
        f"- Plugins: {plugin_text}",
    ]
    if meta.get("registry_files"):  # machine-independent: file names, origins, hashes
        lines.append(f"- Registry files: {escape(_registry_files(meta['registry_files']))}")
    for name in datasets:
        lines.append(f"- Dataset {escape(name)}: {_dataset_text(info.get(name) or {})}")
    lines += [
        f"- BD method: {escape(METHOD_TEXT.get(method, method))}",
        *reporting,
        f"- Anchor: {anchor_text}",
        "- Sign: negative BD-Rate = the row needs fewer bits than the anchor at equal "
        "quality; positive BD-quality = the row is better at equal rate",
        *legend,
        f"- Metric conventions: {escape(meta.get('metric_conventions') or DEFAULT_CONVENTIONS)}",
        f"- Device: {escape(meta.get('device', 'unknown'))}",
        f"- Date: {escape(meta.get('date', 'unknown'))}",
    ]
    # what the run could not evaluate, e.g. weights missing offline: the weight files by
    # name (the table stays machine-independent: folders and URLs are in the run's
    # summary and `run --dry-run`)
    skipped: dict[str, dict[str, None]] = {}
    for s in meta.get("skipped") or []:
        reason = str(s.get("reason", ""))
        what = f"{s.get('kind', '?')} {s.get('name', '?')} ({reason.split(':')[0]}"
        files = skipped.setdefault(what, {})
        files.update(dict.fromkeys(_WEIGHT_FILE.findall(reason)))
    if skipped:
        items = [f"{what}{': ' + ', '.join(files) if files else ''})"
                 for what, files in skipped.items()]
        remedy = (" — put the named files in torch hub's checkpoint folder "
                  "(`$TORCH_HOME/hub/checkpoints`) or run online; `jcsr-bench run --dry-run` "
                  "lists each with its URL"
                  if any(skipped.values()) else "")
        lines.append(f"- Not evaluated: {escape(', '.join(items))}{remedy}")
    return [*lines, ""]


def _registry_files(files: Sequence[Mapping]) -> str:
    from jcsr_bench.plugin.registry import ORIGINS

    return ", ".join(
        f"{Path(f.get('path', '?')).name} ({ORIGINS.get(f.get('origin'), f.get('origin'))}"
        + ("" if f.get("origin") == "shipped" else f", sha256 {str(f.get('sha256'))[:12]}")
        + ")"
        for f in files)


def _dataset_text(d: Mapping) -> str:
    """``identity …, 7 images`` plus what limits the selection (``--limit``, hidden cells)."""
    images = d.get("images")
    text = f"identity {escape(d.get('identity', 'unknown'))}, "
    text += count(images, "image") if isinstance(images, int) else "unknown number of images"
    if d.get("limit") is not None:
        text += f" (the first {escape(d['limit'])} only: run with --limit, not the whole dataset)"
    hidden = d.get("hidden") or []
    if hidden:
        text += (f"; stored results of {count(len(hidden), 'image')} no longer in the dataset "
                 f"are not shown ({escape(', '.join(hidden))})")
    return text


def _datasets(curves: Sequence[Curve]) -> list[str]:
    return list(dict.fromkeys(c.dataset for c in curves))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise JcsrError(f"unknown BD method {method!r}; use one of: {', '.join(METHODS)}")


def _by_label(curves: Sequence[Curve], dataset: str) -> dict[str, Curve]:
    found: dict[str, Curve] = {}
    for c in curves:
        if c.dataset != dataset:
            continue
        if c.label in found:
            raise JcsrError(f"two result curves for {c.label!r} on dataset {dataset!r}")
        found[c.label] = c
    return found


def _bd_columns(quality_metrics: Sequence[str], esc: Callable[[str], str] = escape,
                percent: str = "%") -> list[str]:
    """The two BD column names of each metric; ``esc``/``percent`` for the output format
    (Markdown here, LaTeX in ``report.latex``)."""
    cols = []
    for m in quality_metrics:
        s = spec(m)
        unit = f" ({esc(s.unit)})" if s.unit else ""
        cols += [f"BD-Rate {esc(s.short)} ({percent})", f"BD-{esc(s.short)}{unit}"]
    return cols


def _legend(ranked_by: str | None, overlap: bool, notes: bool) -> list[str]:
    """Header lines explaining the tables' marks (each only when a table shows it)."""
    lines = []
    if ranked_by is not None:
        lines.append(f"- Rank (#): by BD-Rate {escape(spec(ranked_by).short)} against the "
                     f"anchor, lowest (fewest bits) first; {NOT_RANKED} = not ranked because "
                     "that BD-Rate is n/a (the anchor row's BD cells are — by definition)")
    if notes:
        lines.append("- n/a [k]: not defined; reason k is listed under the table")
    if overlap:
        lines.append(
            "- overlap N%: the two curves share only N% of their combined range (quality "
            "for BD-Rate, log-rate for BD-quality; flagged below 75%): the BD value "
            "averages over that shared part only"
        )
    return lines


# ------------------------------------------------------------------------- leaderboard


def _mean_time(curve: Curve, key: str) -> str:
    vals = [p.values[key] for p in curve.points if p.values.get(key) is not None]
    return format_seconds(math.fsum(vals) / len(vals)) if vals else "n/a"


def _points(curve: Curve, metrics: Sequence[str], notes: _Notes) -> tuple[str, str | None]:
    """``"19"`` when every point has the rate and every metric; else the usable points
    per metric (``"PSNR, PSNR-Y 19; MS-SSIM 0 [k]"``, or ``"0/19 [k]"`` when all counts
    agree) with a note saying which values are n/a where and why; returns the cell and
    the note's marker (``None`` when every point is usable)."""
    total = len(curve.points)
    gaps: dict[str, dict[str, list[str]]] = {}  # reason -> metric -> qualities
    usable = dict.fromkeys(metrics, 0)
    for p in curve.points:
        for m in metrics:
            usable[m] += p.values.get(RATE) is not None and p.values.get(m) is not None
        for m in (RATE, *metrics):
            if p.values.get(m) is None:
                why = p.reasons.get(m) or "no value stored"
                gaps.setdefault(why, {}).setdefault(m, []).append(str(p.quality))
    if not gaps:
        return str(total), None
    parts = []
    for why, by_metric in gaps.items():
        by_where: dict[str, list[str]] = {}
        for m, qualities in by_metric.items():
            where = ("every quality" if len(qualities) == total
                     else f"quality {', '.join(qualities)}")
            by_where.setdefault(where, []).append(RATE if m == RATE else spec(m).short)
        parts += [f"{', '.join(names)} n/a at {where}: {why}" for where, names in
                  by_where.items()]
    ref = notes.ref("; ".join(parts))
    counts = set(usable.values())
    if len(counts) <= 1:
        return f"{counts.pop() if counts else 0}/{total} {ref}", ref
    by_count: dict[int, list[str]] = {}
    for m, n in usable.items():
        by_count.setdefault(n, []).append(spec(m).short)
    text = "; ".join(f"{', '.join(names)} {n}" for n, names in
                     sorted(by_count.items(), key=lambda item: -item[0]))
    return f"{text} {ref}", ref


def _bpp_range(curve: Curve) -> str:
    vals = [p.values[RATE] for p in curve.points if p.values.get(RATE) is not None]
    return f"{min(vals):.4f}–{max(vals):.4f}" if vals else "n/a"


def render_leaderboard(
    curves: Sequence[Curve],
    meta: Mapping,
    *,
    anchor: tuple[str, str] | None,
    method: str = "pchip",
    quality_metrics: Sequence[str] | None = None,
    anchor_note: str | None = None,
    aggregate: str = "curve",
    rate: str = "mean",
) -> str:
    """The leaderboard as Markdown: one table per dataset, rows sorted by BD-Rate.

    ``quality_metrics`` defaults to :func:`table_metrics` (the metrics the results hold:
    PSNR-RGB, PSNR-Y, MS-SSIM, and the perceptual distances with a value).
    ``aggregate`` (``curve`` | ``per-image``) and ``rate`` (``mean`` | ``pooled``) choose
    how per-image results become one BD number (:mod:`jcsr_bench.results.aggregate`);
    the header says which. With ``curve`` and ``mean``, a note under a table names any
    image that dominates a curve's mean rate.

    ``anchor`` is ``(codec, sr)``; ``None`` takes the first curve in ``curves``. The
    header says which anchor and why: ``anchor_note`` (e.g. "the anchor of suite
    default"), else a default note. Rows are sorted by the BD-Rate of the first quality
    metric (ascending, undefined last, ties by name); the anchor row comes first. Every
    n/a cell points to a numbered reason under its table. Deterministic.
    """
    _check_method(method)
    _check_choice("--bd-aggregate", aggregate, AGGREGATES)
    _check_choice("--rate", rate, RATES)
    if not curves:
        raise JcsrError("no results to render: the results store holds no curves")
    raw = curves
    if rate == "pooled":
        curves = [pooled_curve(c) for c in curves]
    bd_pair = _per_image_pair if aggregate == "per-image" else _bd_pair
    labels = [c.label for c in curves]
    if anchor is None:
        anchor_label = curves[0].label
        anchor_note = anchor_note or ("no anchor given: the first combination in the "
                                      "results; choose one with --anchor CODEC+SR")
    else:
        anchor_label = f"{anchor[0]}+{anchor[1]}"
        if anchor_label not in labels:
            raise JcsrError(
                f"anchor {anchor_label!r} is not in the results."
                + did_you_mean(anchor_label, labels)
            )
    anchor_text = escape(anchor_label) + (f" ({escape(anchor_note)})" if anchor_note else "")
    quality_metrics = tuple(quality_metrics or table_metrics(curves))
    datasets = _datasets(curves)
    headers = ["#", "Combination", *_bd_columns(quality_metrics), "Points", "bpp range"]
    headers += [name for _, name in TIMINGS]
    n_bd = 2 * len(quality_metrics)
    align = ["left", "left"] + ["right"] * (n_bd + 1) + ["left"] + ["right"] * len(TIMINGS)
    info = meta.get("datasets") or {}
    body: list[str] = []
    overlap = any_notes = False
    for dataset in datasets:
        by_label = _by_label(curves, dataset)
        anchor_curve = by_label.get(anchor_label)
        ranked = []
        for label, curve in by_label.items():
            if label == anchor_label:
                continue
            bds = [bd_pair(anchor_curve, curve, m, method) for m in quality_metrics]
            ranked.append((bds[0].rate.value, label, curve, bds))
        ranked.sort(key=lambda r: (r[0] is None, r[0] if r[0] is not None else 0.0, r[1]))
        notes = _Notes()
        table = []
        rows: list[tuple[str, Curve, list[_BD] | None]] = []
        if anchor_curve is not None:
            rows.append(("anchor", anchor_curve, None))
        rows += [(str(rank) if rate is not None else NOT_RANKED, curve, bds)
                 for rank, (rate, _, curve, bds) in enumerate(ranked, 1)]
        refs: dict[str, str] = {}
        for pos, curve, bds in rows:
            points, ref = _points(curve, quality_metrics, notes)
            if bds is None:
                cells = ["—"] * n_bd
                refs["anchor"] = ref or ""
            else:
                mine = {**refs, "test": ref or ""}
                cells = [c.render(notes, mine) for bd in bds for c in (bd.rate, bd.quality)]
                overlap |= any(c.overlap for bd in bds for c in (bd.rate, bd.quality))
            plain = [_bpp_range(curve), *[_mean_time(curve, key) for key, _ in TIMINGS]]
            # a value missing at every point: its reason is the Points note
            plain = [f"n/a {ref}" if cell == "n/a" and ref else cell for cell in plain]
            table.append([pos, escape(curve.label), *cells, points, *plain])
        size = (info.get(dataset) or {}).get("images")
        size_text = f" ({count(size, 'image')})" if isinstance(size, int) else ""
        body += [f"## {escape(dataset)}{size_text}", ""]
        if anchor_curve is None:
            body += [f"Anchor {escape(anchor_label)} was not evaluated on this dataset.", ""]
        body += [_table(table, headers, align), "", *notes.lines()]
        if aggregate == "curve" and rate == "mean":
            body += _dominance_lines(_by_label(raw, dataset))
        any_notes |= bool(notes.texts)
        body += metric_bd_table(anchor_curve, [curve for _, curve, bds in rows if bds],
                                present_metrics(curves, TABLE_METRICS), method)
    legend = _legend(quality_metrics[0] if quality_metrics else None, overlap, any_notes)
    reporting = [f"- BD aggregate: {escape(AGGREGATE_TEXT[aggregate])}",
                 f"- Rate: {escape(RATE_TEXT[rate])}"]
    lines = _header("jcsr-bench leaderboard", meta, method, anchor_text, datasets, legend,
                    reporting)
    if any(m in PERCEPTUAL_METRICS for m in quality_metrics):
        lines[-1:] = [f"- Perceptual metrics: {PERCEPTUAL_CONVENTIONS}", ""]
    if present_metrics(curves, JPEG_AI_METRICS):
        lines[-1:] = [f"- JPEG AI metrics: {escape(JPEG_AI_CONVENTIONS)}", ""]
    return "\n".join(lines + body).rstrip("\n") + "\n"


def metric_bd_table(anchor: Curve | None, curves: Sequence[Curve], metrics: Sequence[str],
                    method: str) -> list[str]:
    """A compact table under a dataset's main one: the BD-Rate of every metric of the
    JPEG AI set and of SSIMULACRA 2 / CVVDP the results hold, per combination, in the
    main table's order; each n/a numbered with its reason below.
    Empty when there are none."""
    if not metrics or not curves:
        return []
    notes = _Notes()
    headers = ["Combination", *(f"BD-Rate {escape(spec(m).short)} (%)" for m in metrics)]
    rows = [[escape(c.label), *(_bd_pair(anchor, c, m, method).rate.render(notes)
                                for m in metrics)] for c in curves]
    axes = "; ".join(f"{escape(spec(m).short)}: {escape(spec(m).axis)}" for m in metrics)
    return [f"BD-Rate (%) per metric against the anchor, quality axes: {axes}.", "",
            _table(rows, headers, ["left"] + ["right"] * len(metrics)), "", *notes.lines()]


def _table(rows: list[list[str]], headers: list[str], align: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)


# ------------------------------------------------------------------------- pairs


def render_pairs(
    curves: Sequence[Curve],
    meta: Mapping,
    pairs: Sequence[tuple[str, str]],
    method: str = "pchip",
) -> str:
    """Paper-style comparison (Table 1 layout): per pair, one row per dataset.

    Each pair is ``("codec+sr", "codec+sr")`` = (test, anchor); columns are BD-Rate
    PSNR, BD-PSNR, BD-Rate MS-SSIM and BD-MS-SSIM of the test against the anchor.
    """
    _check_method(method)
    if not pairs:
        raise JcsrError("no pairs given; write --pairs TEST:ANCHOR (each CODEC+SR)")
    labels = {c.label for c in curves}
    for pair in pairs:
        for label in pair:
            if label not in labels:
                raise JcsrError(
                    f"combination {label!r} is not in the results." + did_you_mean(label, labels)
                )
    metrics = ("psnr-rgb", "ms-ssim-rgb")
    datasets = _datasets(curves)
    anchor_text = "; ".join(f"{escape(a)} (for {escape(t)})" for t, a in pairs)
    headers = ["Dataset", *_bd_columns(metrics)]
    align = ["left"] + ["right"] * len(metrics) * 2
    body: list[str] = []
    overlap = any_notes = False
    for test, anchor in pairs:
        body += [f"## {escape(test)} vs {escape(anchor)}", ""]
        if parse_label(test)[0] != parse_label(anchor)[0]:
            body += ["Note: the two combinations use different codecs.", ""]
        notes = _Notes()
        rows = []
        for dataset in datasets:
            by_label = _by_label(curves, dataset)
            if test not in by_label:
                na = f"n/a {notes.ref('the test combination was not evaluated on this dataset')}"
                rows.append([escape(dataset)] + [na] * len(headers[1:]))
                continue
            bds = [_bd_pair(by_label.get(anchor), by_label[test], m, method) for m in metrics]
            overlap |= any(c.overlap for bd in bds for c in (bd.rate, bd.quality))
            rows.append([escape(dataset),
                         *[c.render(notes) for bd in bds for c in (bd.rate, bd.quality)]])
        body += [_table(rows, headers, align), "", *notes.lines()]
        any_notes |= bool(notes.texts)
    legend = _legend(None, overlap, any_notes)
    lines = _header("jcsr-bench comparison", meta, method, anchor_text, datasets, legend)
    return "\n".join(lines + body).rstrip("\n") + "\n"


# ------------------------------------------------------------------------- store


def leaderboard_from_store(
    results: str | Path, *, anchor: str | None = None, method: str = "pchip",
    aggregate: str | None = None, rate: str | None = None,
) -> str:
    """Re-render a leaderboard from a results store (file or run folder), no recomputing.

    It covers what the folder's reports cover (:mod:`.coverage`): every stored
    combination, with true image counts. ``anchor`` is ``"codec+sr"``; without it, the
    anchor the runs recorded, else the first combination (the header says which and
    why. ``aggregate`` and ``rate`` default to the latest run's (``run --bd-aggregate``,
    ``--rate``), else ``curve`` and ``mean``. The same store gives the same bytes as the
    run's ``leaderboard.md``.
    """
    view = load_view(results, anchor)
    if view.anchor is None:
        raise JcsrError("no results to render: the results store holds no curves")
    aggregate, rate = reporting_of(view.meta, aggregate, rate)
    return render_leaderboard(view.curves, view.meta, anchor=view.anchor.pair, method=method,
                              anchor_note=view.anchor.note, aggregate=aggregate, rate=rate)


def reporting_of(meta: Mapping, aggregate: str | None = None, rate: str | None = None
                 ) -> tuple[str, str]:
    """(aggregate, rate): the given ones, else the latest run's, else curve and mean."""
    config = meta.get("config") or {}
    return (aggregate or config.get("bd_aggregate") or "curve",
            rate or config.get("rate") or "mean")
