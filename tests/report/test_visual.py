"""Visual comparison grids: colour ranking, crops, and a real run on the samples dataset."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.cli.main import main
from jcsr_bench.cli.visual import visual_command
from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.kit.errors import DataError, JcsrError
from jcsr_bench.report.visual import (
    BEST_COLOR,
    PLAIN_COLOR,
    SECOND_COLOR,
    GridRow,
    Tile,
    _choose_qualities,
    default_crop,
    parse_crop,
    rank_colors,
    render_grid,
    save_figure,
    validate_crop,
)
from jcsr_bench.results.stored_cells import StoredCell as _Cell


def _texts(fig) -> dict[str, list]:
    """Every text drawn in the figure's axes, by content."""
    out: dict[str, list] = {}
    for ax in fig.axes:
        for text in ax.texts:
            out.setdefault(text.get_text(), []).append(text)
    return out


def _image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- ranking ------------------------------------------------------------------------------
def test_rank_colors_best_red_second_blue():
    assert rank_colors([27.0, 29.5, 28.1, None], 2) == [PLAIN_COLOR, BEST_COLOR,
                                                         SECOND_COLOR, PLAIN_COLOR]
    # ranked as printed: 30.001 and 30.004 both print 30.00, share red; next value blue
    assert rank_colors([30.001, 29.0, 30.004, 28.0], 2) == [BEST_COLOR, SECOND_COLOR,
                                                            BEST_COLOR, PLAIN_COLOR]
    assert rank_colors([float("nan"), float("inf"), 40.0], 2) == [PLAIN_COLOR, BEST_COLOR,
                                                                  SECOND_COLOR]
    assert rank_colors([0.9], 4) == [BEST_COLOR]
    assert rank_colors([None, None], 4) == [PLAIN_COLOR, PLAIN_COLOR]


def test_render_grid_colours_each_metric_separately_per_row():
    gt = _image(0, 60, 80)
    crop = (10, 20, 16, 12)
    tiles = [
        Tile("a+x", _image(1, 12, 16), psnr=30.0, ms_ssim=0.9000, note="0.100 bpp"),
        Tile("a+y", _image(2, 12, 16), psnr=31.0, ms_ssim=0.8000),
        Tile("b+x", _image(3, 12, 16), psnr=29.0, ms_ssim=0.9500),
        Tile("b+y", None, missing="failed: boom"),
        Tile("c+none", _image(4, 3, 4), psnr=45.0, ms_ssim=0.9900, ranked=False),
    ]
    other = [Tile("a+x", _image(5, 12, 16), psnr=20.0, ms_ssim=None),
             Tile("a+y", _image(6, 12, 16), psnr=19.5, ms_ssim=None)]
    fig = render_grid(gt, crop, [GridRow("q=1", tiles), GridRow("q=8", other)],
                      title="set / img", footnote="legend")
    texts = _texts(fig)

    def color(text: str) -> str:
        (artist,) = texts[text]
        return artist.get_color()

    assert color("PSNR 31.00 dB") == BEST_COLOR and color("PSNR 30.00 dB") == SECOND_COLOR
    assert color("PSNR 29.00 dB") == PLAIN_COLOR
    assert color("MS-SSIM 0.9500") == BEST_COLOR and color("MS-SSIM 0.9000") == SECOND_COLOR
    assert color("MS-SSIM 0.8000") == PLAIN_COLOR
    # a tile scored against another reference is shown but never coloured
    assert color("PSNR 45.00 dB") == PLAIN_COLOR and color("MS-SSIM 0.9900") == PLAIN_COLOR
    # the second row is ranked on its own; n/a is plain
    assert color("PSNR 20.00 dB") == BEST_COLOR and color("PSNR 19.50 dB") == SECOND_COLOR
    assert all(t.get_color() == PLAIN_COLOR for t in texts["MS-SSIM n/a"])
    assert "failed: boom" in texts and "0.100 bpp" in texts
    titles = [ax.get_title() for ax in fig.axes]
    assert titles.count("a+x") == 2 and "ground truth" in titles
    assert titles.count("ground truth (crop)") == 2
    # the crop box is drawn on the whole ground truth at (x, y, w, h)
    (gt_ax,) = [ax for ax in fig.axes if ax.get_title() == "ground truth"]
    (box,) = gt_ax.patches
    assert (box.get_x() + 0.5, box.get_y() + 0.5, box.get_width(), box.get_height()) == \
        (10, 20, 16, 12)
    # tiles are the crops enlarged with nearest neighbour (integer factor)
    (ref_ax,) = [ax for ax in fig.axes if ax.get_title() == "ground truth (crop)"][:1]
    shown = np.asarray(ref_ax.images[0].get_array())
    factor = shown.shape[0] // 12
    assert factor > 1 and shown.shape[:2] == (12 * factor, 16 * factor)
    expected = np.repeat(np.repeat(gt[20:32, 10:26], factor, 0), factor, 1)
    assert np.array_equal(shown, expected)


def test_render_grid_accepts_tensors_and_saves(tmp_path):
    gt = torch.from_numpy(_image(0, 40, 40)).permute(2, 0, 1).contiguous()
    tile = Tile("x+y", gt[:, 0:10, 0:10], psnr=25.0, ms_ssim=0.5)
    fig = render_grid(gt, (0, 0, 10, 10), [GridRow("q=3", [tile])])
    png = save_figure(fig, tmp_path / "g.png")
    svg = save_figure(fig, tmp_path / "g.svg")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert "PSNR 25.00 dB" in svg.read_text()
    with pytest.raises(JcsrError, match=r"\.png"):
        save_figure(fig, tmp_path / "g.gif")
    with pytest.raises(JcsrError, match="does not fit"):
        render_grid(gt, (35, 0, 10, 10), [])


# -- crops ---------------------------------------------------------------------------------
def test_crop_parsing_default_and_validation():
    assert parse_crop(None) is None
    assert parse_crop(" 1, 2,3 ,4") == (1, 2, 3, 4)
    for bad in ("1,2,3", "1,2,3,x", "1,2,3,4,5", ""):
        with pytest.raises(JcsrError, match="x,y,w,h"):
            parse_crop(bad)
    assert default_crop(512, 512) == (192, 192, 128, 128)
    assert default_crop(448, 300) == (186, 112, 75, 75)
    assert default_crop(3, 2) == (1, 0, 1, 1)
    assert validate_crop((0, 0, 448, 300), 448, 300) == (0, 0, 448, 300)
    with pytest.raises(JcsrError, match=r"--crop 400,0,100,10 does not fit the 448x300"):
        validate_crop((400, 0, 100, 10), 448, 300)
    with pytest.raises(JcsrError, match="does not fit"):
        validate_crop((-1, 0, 10, 10), 448, 300)
    with pytest.raises(JcsrError, match=">= 1 px"):
        validate_crop((0, 0, 0, 10), 448, 300)


def _cell(codec: str, quality) -> _Cell:
    return _Cell("d", "i", codec, quality, "s", "ok", None, "k", "s", "h", 1, {}, {})


def test_default_qualities_are_low_middle_high_of_the_first_codec():
    cells = [_cell("b", q) for q in (1, 2)] + [_cell("a", q) for q in (90, 10, 50, 30, 70)]
    assert _choose_qualities(cells, ["a", "b"], None) == [10, 50, 90]
    assert _choose_qualities(cells, ["b", "a"], None) == [1, 2]
    assert _choose_qualities(cells, ["a", "b"], [2, 30.0]) == [2, 30]
    with pytest.raises(JcsrError, match="stored qualities: 90, 10, 50, 30, 70, 1, 2"):
        _choose_qualities(cells, ["a", "b"], [20])


# -- a real run --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One real photograph (samples: chelsea, 451x300), jpeg at 2 qualities, bicubic +
    lanczos; a user registry names the one-image dataset (visual must rebuild it)."""
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench.run.engine import run

    base = tmp_path_factory.mktemp("visual-run")
    (base / "reg.yaml").write_text("datasets:\n  cat:\n    type: samples\n"
                                   "    names: [chelsea]\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JCSR_BENCH_CACHE", str(base / "cache"))
        registry = load_registry([base / "reg.yaml"])
        summary = run(registry=registry, datasets=["cat"], codecs=["jpeg"],
                      srs=["bicubic", "lanczos"], qualities=[20, 80],
                      output=base / "out", device="cpu", progress=False,
                      stream=io.StringIO())
    assert summary.exit_code == 0 and summary.cells == 4
    return base, registry


def _stored(out: Path) -> dict:
    from jcsr_bench.results.store import load_rows

    return {(r["codec"], r["quality"], r["sr"]): r["values"] for r in load_rows(out)}


def test_visual_on_a_real_run_reuses_the_cache(real_run, monkeypatch, capsys):
    base, registry = real_run
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(base / "cache"))
    out = base / "out"
    code = visual_command(results=out, image="chelsea", qualities=None, crop=None,
                          output=None, registry=registry, device="cpu")
    captured = capsys.readouterr()
    path = out / "visual-chelsea.png"
    assert code == 0 and captured.out.strip() == str(path)
    assert "warning" not in captured.err
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 800 and im.size[1] > 400


def test_visual_recomputes_missing_codec_outputs_and_checks_psnr(real_run, tmp_path,
                                                                 capsys):
    base, registry = real_run
    out = tmp_path / "out"
    shutil.copytree(base / "out", out)
    cells = Path(str(tmp_path / "jcsr-cache")) / "cells"  # this test's (empty) cache
    assert not cells.exists()
    target = tmp_path / "grid.png"
    assert visual_command(results=out, image="cat/chelsea", qualities=[80],
                          crop=(100, 50, 64, 32), output=target, registry=registry,
                          device="cpu") == 0
    assert target.is_file() and "warning" not in capsys.readouterr().err
    assert len(list(cells.glob("*/*/meta.json"))) == 1  # only q=80 was encoded again
    # the recomputed output matches the stored score: tamper with it -> a warning
    with sqlite3.connect(out / "results.sqlite") as conn:
        conn.execute("UPDATE metrics SET value = value + 0.5 WHERE metric = 'psnr-rgb' "
                     "AND sr = 'lanczos' AND quality = '80'")
    visual_command(results=out, image="chelsea", qualities=[80], crop=None,
                   output=target, registry=registry, device="cpu")
    err = capsys.readouterr().err
    assert "recomputed PSNR differs" in err and "jpeg+lanczos q=80" in err
    assert "jpeg+bicubic" not in err


def test_recomputed_output_equals_an_independent_pipeline(real_run, monkeypatch):
    """The shown tile is the pipeline's output: LR -> jpeg -> SR, scored as stored."""
    from jcsr_bench.imaging.lr import make_lr, mod_crop
    from jcsr_bench.report import visual

    base, registry = real_run
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(base / "cache"))
    shown = {}
    real = visual.render_grid

    def spy(gt, crop, rows, **kw):
        shown.update({(r.label, t.label): t for r in rows for t in r.tiles})
        return real(gt, crop, rows, **kw)

    monkeypatch.setattr(visual, "render_grid", spy)
    visual_command(results=base / "out", image="chelsea", qualities=[20],
                   crop=(8, 16, 40, 24), output=base / "spy.png", registry=registry,
                   device="cpu")
    hr = mod_crop(registry.build("datasets", "cat").load("chelsea"), 4)
    codec, sr = registry.build("codecs", "jpeg"), registry.build("sr", "bicubic")
    result = sr.upscale(codec.decode(codec.encode(make_lr(hr, 4, "matlab"), 20)))
    tile = shown[("q=20", "jpeg+bicubic")]
    assert torch.equal(tile.image, result[:, 16:40, 8:48])
    assert tile.psnr == pytest.approx(psnr_rgb(hr, result), abs=1e-9)
    assert tile.psnr == _stored(base / "out")[("jpeg", 20, "bicubic")]["psnr-rgb"]


def test_visual_errors_name_the_fix(real_run, monkeypatch, tmp_path, capsys):
    base, registry = real_run
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(base / "cache"))
    out = base / "out"
    with pytest.raises(DataError, match="'chelse' is not in this run.*'chelsea'"):
        visual_command(results=out, image="chelse", qualities=None, crop=None,
                       output=None, registry=registry)
    with pytest.raises(JcsrError, match="quality 50 .*stored qualities: 20, 80"):
        visual_command(results=out, image="chelsea", qualities=[50], crop=None,
                       output=None, registry=registry)
    with pytest.raises(JcsrError, match="does not fit the 448x300 px image chelsea"):
        visual_command(results=out, image="chelsea", qualities=None,
                       crop=(400, 0, 64, 64), output=None, registry=registry)
    with pytest.raises(DataError, match="no results store"):
        visual_command(results=tmp_path / "nothing", image="chelsea", qualities=None,
                       crop=None, output=None, registry=registry)
    # through the CLI: a clear message and exit status 2, no traceback
    assert main(["visual", "--results", str(out), "--image", "chelsea",
                 "--crop", "1,2,three,4"]) == 2
    assert "expected x,y,w,h" in capsys.readouterr().err
