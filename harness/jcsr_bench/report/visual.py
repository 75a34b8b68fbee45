"""Visual comparison grids (the paper's Figs. 8-10): crops of every combination's output.

``jcsr-bench visual --image NAME --qualities 10,50,90 [--crop x,y,w,h]`` draws, for one
image of a stored run, the whole ground truth (crop box marked) on the left, then one
row per quality: the ground-truth crop and the same crop of each (codec, SR)
combination's output, enlarged with nearest neighbour so codec and SR artefacts stay
visible. Under each tile: the *stored* whole-image PSNR-RGB and MS-SSIM of that cell
(the scored numbers, not the crop's), the best value of a row in red and the second
best in blue, for each metric separately. Values are ranked as printed (2 decimals for
PSNR, 4 for MS-SSIM): equal printed values share a colour, and "second best" is the
next lower printed value, so the colours never contradict the numbers a reader sees.

Only the shown cells are recomputed: the codec output comes from the engine's disk cache
(by the codec key stored with each cell), else the codec runs again on the LR image
(:func:`jcsr_bench.imaging.lr.lr_for`, with the scale and kernel of the run that stored the
cell); the SR model then upscales the decoded image. The recomputed output's PSNR is
checked against the stored value: a difference means a non-deterministic component (or
a changed dataset, weights or device) and is reported as a warning.

Defaults: qualities = the lowest, middle and highest quality stored for the first codec
of the run (all of them when there are at most three); crop = a centred square whose
side is a quarter of the image's short side. Coordinates are HR pixels of the scored
image (mod-cropped to a multiple of the scale, top-left kept).

:func:`render_grid` is pure (in-memory crops and scores in, a matplotlib ``Figure``
out), matplotlib is imported lazily and only its object API is used (Agg canvas).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jcsr_bench.imaging.lr import mod_crop
from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.kit.errors import DataError, JcsrError
from jcsr_bench.kit.identity import safe_filename
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.report.plots import plot_text
from jcsr_bench.results.store import quality_text
from jcsr_bench.results.stored_cells import StoredCell, read_cells

__all__ = [
    "BEST_COLOR",
    "SECOND_COLOR",
    "GridRow",
    "Tile",
    "default_crop",
    "parse_crop",
    "rank_colors",
    "render_grid",
    "validate_crop",
    "visual_grid",
]

BEST_COLOR = "#e00000"  # red
SECOND_COLOR = "#0040ff"  # blue
PLAIN_COLOR = "black"
PSNR_DECIMALS, MSSSIM_DECIMALS = 2, 4
PSNR_TOLERANCE_DB = 1e-6  # recomputed vs stored PSNR; above: a non-deterministic component
_DPI = 110
_TILE_IN = 2.3  # side of one crop tile, inches
_RC = {"svg.hashsalt": "jcsr-bench", "svg.fonttype": "none", "font.size": 9,
       "pdf.fonttype": 42}  # PDF fonts embedded as TrueType (Type 42)


# -- pure rendering ------------------------------------------------------------------------
@dataclass
class Tile:
    """One combination at one quality: its crop (or why there is none) and its scores."""

    label: str
    image: Any | None  # crop: uint8 tensor [3, h, w] or array [h, w, 3]; None = nothing
    psnr: float | None = None  # dB, whole image (stored)
    ms_ssim: float | None = None  # linear, whole image (stored)
    note: str = ""  # a second title line, e.g. "0.213 bpp"
    missing: str = ""  # shown in place of the image when there is none
    ranked: bool = True  # False: scored against another reference, never coloured


@dataclass
class GridRow:
    """One quality: its label and a tile per combination (same order in every row)."""

    label: str
    tiles: list[Tile]


def rank_colors(values: Sequence[float | None], decimals: int) -> list[str]:
    """Red for the best printed value, blue for the second best, black otherwise.

    Values are compared rounded to ``decimals`` (as printed); ties share a colour and
    the second best is the next lower distinct value. ``None``/NaN get black.
    """
    printed = [None if v is None or math.isnan(v) else round(float(v), decimals)
               for v in values]
    distinct = sorted({v for v in printed if v is not None}, reverse=True)
    colors = {v: c for v, c in zip(distinct, (BEST_COLOR, SECOND_COLOR))}
    return [colors.get(v, PLAIN_COLOR) if v is not None else PLAIN_COLOR for v in printed]


def _fmt_psnr(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "PSNR n/a"
    return "PSNR inf dB" if math.isinf(value) else f"PSNR {value:.{PSNR_DECIMALS}f} dB"


def _fmt_msssim(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "MS-SSIM n/a"
    return f"MS-SSIM {value:.{MSSSIM_DECIMALS}f}"


def _hwc(image: Any):
    """An ``[h, w, 3]`` uint8 array from a ``[3, h, w]`` tensor or an ``[h, w, 3]`` array."""
    import numpy as np

    if isinstance(image, np.ndarray):
        array = image
    else:  # a torch tensor, [3, h, w]
        from jcsr_bench.imaging.images import to_numpy

        array = to_numpy(image)
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit RGB image, got {array.dtype} {list(array.shape)}")
    return np.ascontiguousarray(array)


def _enlarge(array, target_px: int):
    """Nearest-neighbour enlargement by an integer factor to at least ``target_px``."""
    import numpy as np

    factor = max(1, math.ceil(target_px / max(array.shape[:2])))
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def _text(label: str) -> str:
    """A plugin-given name as matplotlib text: no mathtext, not hidden by a leading '_'."""
    return plot_text(label)


def _show(ax, array, target_px: int) -> None:
    ax.imshow(_enlarge(array, target_px), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def render_grid(ground_truth: Any, crop: tuple[int, int, int, int], rows: Sequence[GridRow],
                *, title: str = "", footnote: str = ""):
    """The comparison grid as a matplotlib ``Figure`` (Agg canvas attached).

    ``ground_truth`` is the whole reference image; ``crop`` = (x, y, w, h) in its
    pixels, marked on it and shown as the reference tile of every row. Each row's tiles
    are crops already cut from the outputs; their PSNR / MS-SSIM are ranked per row
    (:func:`rank_colors`).
    """
    import matplotlib
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    gt = _hwc(ground_truth)
    validate_crop(crop, gt.shape[1], gt.shape[0], what="crop")
    x, y, w, h = crop
    gt_crop = gt[y:y + h, x:x + w]
    n_rows = max(1, len(rows))
    n_tiles = max((len(r.tiles) for r in rows), default=0)
    aspect = gt.shape[1] / gt.shape[0]
    crop_aspect = w / h
    tile_w = max(0.5, _TILE_IN * min(1.0, crop_aspect))  # the long side gets _TILE_IN
    tile_h = max(0.5, _TILE_IN / max(1.0, crop_aspect))
    cell_h = tile_h + 0.95  # two title lines above, two score lines below
    gt_h = cell_h * n_rows - 0.6
    gt_w = min(gt_h * aspect, 2.4 * _TILE_IN)
    fig_w = gt_w + 0.4 + (tile_w + 0.25) * (n_tiles + 1)
    fig_h = cell_h * n_rows + (0.55 if title else 0.1) + (0.35 if footnote else 0.0)
    target_px = int(max(tile_w, tile_h) * _DPI)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(fig_w, fig_h), dpi=_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(n_rows, n_tiles + 2,
                                width_ratios=[gt_w / tile_w] + [1.0] * (n_tiles + 1))
        ax = fig.add_subplot(grid[:, 0])
        ax.imshow(gt, interpolation="antialiased")
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="yellow",
                               linewidth=2.0, path_effects=[
                                   patheffects.withStroke(linewidth=4.0, foreground="black")]))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("ground truth", fontsize=11, fontweight="bold")
        ax.set_xlabel(f"crop x={x}, y={y}, {w}x{h} px", fontsize=9)
        for r, row in enumerate(rows):
            ax = fig.add_subplot(grid[r, 1])
            _show(ax, gt_crop, target_px)
            ax.set_title("ground truth (crop)", fontsize=10, fontweight="bold", pad=15)
            ax.set_ylabel(_text(row.label), fontsize=12, fontweight="bold")
            psnr_colors = rank_colors([t.psnr if t.ranked else None for t in row.tiles],
                                      PSNR_DECIMALS)
            ssim_colors = rank_colors([t.ms_ssim if t.ranked else None for t in row.tiles],
                                      MSSSIM_DECIMALS)
            for i, tile in enumerate(row.tiles):
                ax = fig.add_subplot(grid[r, i + 2])
                _draw_tile(ax, tile, target_px, psnr_colors[i], ssim_colors[i])
        if title:
            fig.suptitle(_text(title), fontsize=12, fontweight="bold")
        if footnote:
            fig.supxlabel(_text(footnote), fontsize=8, color="#444444")
    return fig


def _draw_tile(ax, tile: Tile, target_px: int, psnr_color: str, ssim_color: str) -> None:
    if tile.image is not None:
        _show(ax, _hwc(tile.image), target_px)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("#eeeeee")
        ax.text(0.5, 0.5, _text(tile.missing or "n/a"), ha="center", va="center",
                wrap=True, fontsize=8, color="#555555", transform=ax.transAxes)
    ax.set_title(_text(tile.label), fontsize=10, fontweight="bold", pad=15)
    if tile.note:
        ax.annotate(_text(tile.note), xy=(0.5, 1.0), xycoords="axes fraction",
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8.5, color="#333333")
    for line, (text, color) in enumerate(((_fmt_psnr(tile.psnr), psnr_color),
                                          (_fmt_msssim(tile.ms_ssim), ssim_color))):
        ax.annotate(text, xy=(0.5, 0.0), xycoords="axes fraction",
                    xytext=(0, -3 - 12.5 * line), textcoords="offset points",
                    ha="center", va="top", fontsize=9.5, color=color,
                    fontweight="bold" if color != PLAIN_COLOR else "normal")


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` (format from the suffix: .png, .svg, .pdf), reproducibly."""
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lower().lstrip(".") or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise JcsrError(f"--write {path}: use a .png, .svg or .pdf file name")
    metadata = {"Software": None} if fmt == "png" else (
        {"Date": None, "Creator": None} if fmt == "svg" else {"CreationDate": None})
    with matplotlib.rc_context(_RC):
        fig.savefig(path, format=fmt, metadata=metadata)
    return path


# -- crops -----------------------------------------------------------------------------------
def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    """``"x,y,w,h"`` -> a tuple of 4 ints (None for None)."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise JcsrError(f"--crop {text!r}: expected x,y,w,h as 4 integers (HR pixels), "
                        "e.g. --crop 200,120,128,128")
    return values  # type: ignore[return-value]


def default_crop(width: int, height: int) -> tuple[int, int, int, int]:
    """A centred square, a quarter of the short side (at least 1 px)."""
    side = max(1, min(width, height) // 4)
    return ((width - side) // 2, (height - side) // 2, side, side)


def validate_crop(crop: Sequence[int], width: int, height: int, *, what: str = "--crop",
                  where: str = "") -> tuple[int, int, int, int]:
    """``crop`` as (x, y, w, h) inside a ``width`` x ``height`` image, else JcsrError."""
    if len(crop) != 4 or not all(isinstance(v, int) and not isinstance(v, bool)
                                 for v in crop):
        raise JcsrError(f"{what} {tuple(crop)}: expected 4 integers x,y,w,h")
    x, y, w, h = crop
    text = f"{what} {x},{y},{w},{h}"
    if w < 1 or h < 1:
        raise JcsrError(f"{text}: width and height must be >= 1 px")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise JcsrError(f"{text} does not fit the {width}x{height} px image{where}: need "
                        f"0 <= x, x + w <= {width}, 0 <= y, y + h <= {height}")
    return (x, y, w, h)


def _scaled_crop(crop: tuple[int, int, int, int], hr_shape: Sequence[int],
                 out_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """The HR crop box in an output of another size (codec-only SR gives LR-size)."""
    x, y, w, h = crop
    sy, sx = out_shape[-2] / hr_shape[-2], out_shape[-1] / hr_shape[-1]
    x0, y0 = int(math.floor(x * sx)), int(math.floor(y * sy))
    x1 = min(out_shape[-1], max(x0 + 1, int(math.ceil((x + w) * sx))))
    y1 = min(out_shape[-2], max(y0 + 1, int(math.ceil((y + h) * sy))))
    return (x0, y0, x1 - x0, y1 - y0)


# -- the command -------------------------------------------------------------------------------
def _find_image(cells: list[StoredCell], image: str) -> tuple[str, str]:
    """(dataset, image) for ``NAME`` or ``DATASET/NAME``; did-you-mean when unknown."""
    pairs = list(dict.fromkeys((c.dataset, c.image) for c in cells))
    if not pairs:
        raise DataError("the results store holds no cells: run `jcsr-bench run` first")
    exact = [p for p in pairs if p[1] == image]
    if not exact and "/" in image:
        dataset, name = image.split("/", 1)
        exact = [p for p in pairs if p == (dataset, name)]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise JcsrError(f"image {image!r} is in several datasets of this run: name one as "
                        + " or ".join(f"--image {d}/{n}" for d, n in exact))
    names = sorted({n for _, n in pairs})
    raise DataError(f"image {image!r} is not in this run's results."
                    + did_you_mean(image, names))


def _same_quality(a: Any, b: Any) -> bool:

    if quality_text(a) == quality_text(b):
        return True
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return numeric and a == b


def _choose_qualities(cells: list[StoredCell], codecs: list[str], requested: list | None) -> list:
    """The rows' qualities: requested ones (each stored for some codec), else defaults."""
    stored: list[Any] = []
    for codec in codecs:
        for c in cells:
            if c.codec == codec and not any(_same_quality(c.quality, q) for q in stored):
                stored.append(c.quality)
    if requested:
        chosen = []
        for q in requested:
            match = next((s for s in stored if _same_quality(s, q)), None)
            if match is None:
                raise JcsrError(f"quality {q!r} is not in this run's results for this image; "
                                f"stored qualities: {', '.join(map(str, stored))}")
            if match not in chosen:
                chosen.append(match)
        return chosen
    first = [c.quality for c in cells if c.codec == codecs[0]]
    first = list(dict.fromkeys(json.dumps(q) for q in first))
    values = [json.loads(q) for q in first]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        values = sorted(values)
    if len(values) <= 3:
        return values
    return [values[0], values[(len(values) - 1) // 2], values[-1]]


def _ordered(names: list[str], preferred: list[str]) -> list[str]:
    unique = list(dict.fromkeys(names))
    return sorted(unique, key=lambda n: (preferred.index(n) if n in preferred
                                         else len(preferred), n))


def visual_grid(*, results: Path, image: str, qualities: list | None,
                crop: tuple[int, int, int, int] | None, output: Path | None,
                recompute: Callable[[str, str, dict[int, dict], dict], Any],
                warn: Callable[[str], None]) -> Path:
    """The comparison grid of one stored image, written to a file; returns its path.

    Every (codec, SR) combination stored for the image's dataset is a column, each
    chosen quality a row (see the module docstring for defaults and recomputation).
    ``recompute(dataset, image, runs, meta)`` gives the object that rebuilds the shown
    cells' outputs (``jcsr_bench.run.recompute.Recompute``).
    """
    cells, runs, meta = read_cells(Path(results))
    dataset, name = _find_image(cells, image)
    mine = [c for c in cells if (c.dataset, c.image) == (dataset, name)]
    config = meta.get("config") or {}
    codecs = _ordered([c.codec for c in mine], list(config.get("codecs") or []))
    srs = _ordered([c.sr for c in mine], list(config.get("srs") or []))
    combos = [(c, s) for c in codecs for s in srs
              if any(x.codec == c and x.sr == s for x in mine)]
    chosen = _choose_qualities(mine, codecs, qualities)

    work = recompute(dataset, name, runs, meta)
    work.check_hash(mine[0].image_hash)
    scale = work.scale(mine[0])
    hr = mod_crop(work.hr, scale)
    height, width = int(hr.shape[-2]), int(hr.shape[-1])
    where = f" {name} (HR pixels" + (f", mod-cropped to a multiple of the scale {scale})"
                                     if scale > 1 else ")")
    box = (validate_crop(crop, width, height, where=where) if crop is not None
           else default_crop(width, height))
    mismatches = []
    rows = []
    for quality in chosen:
        tiles = []
        for codec, sr in combos:
            label = f"{codec}+{sr}"
            cell = next((c for c in mine if c.codec == codec and c.sr == sr
                         and _same_quality(c.quality, quality)), None)
            if cell is None:
                tiles.append(Tile(label, None, missing=f"q={quality} not run"))
                continue
            if cell.status != "ok":
                tiles.append(Tile(label, None, missing="failed: " + (cell.error or "")[:60]))
                continue
            psnr = cell.values.get("psnr-rgb")
            result, reference = work.output(cell)
            if psnr is not None:
                again = psnr_rgb(reference, result)
                if not (abs(again - psnr) <= PSNR_TOLERANCE_DB or again == psnr):
                    mismatches.append(f"{label} q={quality}: stored {psnr:.6f} dB, "
                                      f"recomputed {again:.6f} dB")
            x, y, w, h = _scaled_crop(box, hr.shape, result.shape)
            bpp = cell.values.get("bpp")
            note = f"{bpp:.3f} bpp" if bpp is not None else ""
            codec_only = list(reference.shape) != list(hr.shape)  # a scale-1 'SR'
            if codec_only:
                note = (note + ", " if note else "") + "vs LR: unranked"
            tiles.append(Tile(label, result[:, y:y + h, x:x + w], psnr,
                              cell.values.get("ms-ssim-rgb"), note=note,
                              ranked=not codec_only))
        rows.append(GridRow(f"q={quality}", tiles))
    for text in mismatches:
        warn(f"recomputed PSNR differs from the stored one ({text}): a non-deterministic "
              "component, or the data, weights or device changed since the run")

    device_text = (runs.get(mine[0].run_id) or meta).get("device") or "?"
    title = f"{dataset} / {name}  (x{scale} down, crop {box[2]}x{box[3]} px at " \
            f"{box[0]},{box[1]})"
    footnote = ("PSNR-RGB / MS-SSIM of the whole image (stored scores); red = best, blue = "
                "second best per quality; crops enlarged with nearest neighbour; run device: "
                f"{device_text}")
    fig = render_grid(hr, box, rows, title=title, footnote=footnote)
    target = (Path(output) if output is not None
              else Path(results) / f"visual-{safe_filename(name)}.png")
    return save_figure(fig, target)
