"""The HTML report without a browser: written by every run, a pure function of the store,
self-contained, its BD numbers equal to the Markdown leaderboard's for every anchor."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes import go, make_registry
from markupsafe import escape
from PIL import Image

from jcsr_bench.cli.main import main
from jcsr_bench.report.coverage import load_view
from jcsr_bench.report.html import CSP, quality_metrics
from jcsr_bench.report.leaderboard import leaderboard_from_store


def page_data(html: str) -> dict:
    """The JSON the page's script reads (DATA)."""
    start = html.index("const DATA = ") + len("const DATA = ")
    return json.JSONDecoder().raw_decode(html[start:])[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A run of two fake codecs x two SR models, 4 qualities, 3 images (40x56 px)."""
    tmp = tmp_path_factory.mktemp("html")
    registry = make_registry(tmp / "reg")
    summary = go(registry, tmp, qualities=[1, 2, 3, 4])
    assert summary.exit_code == 0
    return tmp / "out", registry


@pytest.fixture
def cli(folder, monkeypatch):
    """``main`` with the fake components' registry (the CLI loads only installed ones)."""
    from jcsr_bench.cli import options

    monkeypatch.setattr(options, "registry", lambda args: folder[1])
    return main


def markdown_cells(text: str) -> dict[str, list[str]]:
    """Combination -> its BD cells as the Markdown prints them ("n/a [k]" -> "n/a")."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 4 and cells[0] not in ("#", "") and not set(cells[0]) <= {":", "-"}:
            out[cells[1]] = [re.sub(r"^n/a \[\d+\]$", "n/a", c) for c in cells[2:-5]]
    return out


def test_run_writes_a_self_contained_report(folder):
    out, _ = folder
    html = (out / "report.html").read_text()
    assert f'content="{escape(CSP)}"' in html and "default-src 'none'" in CSP
    # nothing that a browser would fetch: the markup (plotly.js aside, whose strings
    # hold URLs it never loads here) has no URL in src/href but data: and the exports
    markup = re.sub(r"<script>.*?</script>", "", html, count=1, flags=re.S)
    assert "plotly" not in markup.lower()[:2000]
    assert not re.findall(r"""(?:src|href)=["'](?!data:|#)[a-z]+:""", markup)
    assert "report.html" in json.loads((out / "outputs.json").read_text())["files"]
    data = page_data(html)
    assert "leaderboard.md" in data["exports"] and "results.csv" in data["exports"]
    assert all(f'href="{f}"' in html for f in data["exports"])
    assert all((out / f).is_file() for f in data["exports"])


def test_same_store_same_bytes_and_report_command(folder, cli, tmp_path):
    out, _ = folder
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert cli(["report", "--results", str(copy)]) == 0
    assert (copy / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert cli(["report", "--results", str(copy), "--out", str(tmp_path / "r.html"),
                "--images", "img1"]) == 0
    data = page_data((tmp_path / "r.html").read_text())
    assert [v["name"] for v in data["images"]] == ["img1"]
    assert "copy/leaderboard.md" in data["exports"]  # links relative to the page


def test_every_stored_quality_metric_is_a_leaderboard_column(folder):
    out, _ = folder
    data = page_data((out / "report.html").read_text())
    keys = [m["key"] for m in data["metrics"]]
    assert keys == quality_metrics(load_view(out).curves)
    assert "psnr-y" in keys and "psnr-rgb" in keys and "ms-ssim-rgb" in keys
    assert "bpp" not in keys and "encode_s" not in keys


def test_anchor_switch_equals_leaderboard_anchor_for_every_anchor(folder):
    out, _ = folder
    data = page_data((out / "report.html").read_text())
    (dataset,) = data["datasets"]
    columns = [c for m in data["metrics"] for c in m["columns"]]
    checked = 0
    for anchor in [c["label"] for c in dataset["combos"]]:
        markdown = markdown_cells(leaderboard_from_store(out, anchor=anchor))
        head = next(line for line in leaderboard_from_store(out, anchor=anchor).splitlines()
                    if line.startswith("| #"))
        shown = [c.strip() for c in head.strip("|").split("|")][2:-5]
        for label, cells in markdown.items():
            if label == anchor:
                continue
            page = dict(zip(columns, [c[0] for c in dataset["bd"][anchor][label]]))
            assert [page[c] for c in shown] == cells, (anchor, label)
            checked += len(cells)
            reasons = [c[1] for c in dataset["bd"][anchor][label] if c[0] == "n/a"]
            assert all(reasons), "every n/a has its reason"
    assert checked >= 4 * 3 * 4


def test_images_are_the_recomputed_outputs(folder):
    out, _ = folder
    data = page_data((out / "report.html").read_text())
    view = data["images"][0]
    x, y, w, h = view["window"]
    assert view["crop"][2] <= w <= view["size"][0]

    def pixels(uri):
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))

    gt = pixels(view["gt"])
    assert gt.shape == (h, w, 3)
    cell = next(c for c in view["cells"] if c["label"] == "fa+up" and c["quality"] == 1)
    # fake codec fa quantises with step 8 (x quality), fake SR 'up' is nearest neighbour:
    # the tile is the ground truth quantised at LR, so close to it but not equal
    shown = pixels(cell["uri"]).astype(int)
    assert shown.shape == gt.shape and not np.array_equal(shown, gt)
    assert cell["scores"]["psnr-rgb"] > 20
    assert set(cell["scores"]) >= {"bpp", "psnr-rgb", "psnr-y"}


def test_unknown_image_is_a_one_line_error(folder, cli, tmp_path, capsys):
    out, _ = folder
    copy = tmp_path / "c"
    shutil.copytree(out, copy)
    assert cli(["report", "--results", str(copy), "--images", "img9"]) == 2
    err = capsys.readouterr().err
    assert "--images 'img9'" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert cli(["report", "--results", str(tmp_path / "none")]) == 2
    assert "no results store" in capsys.readouterr().err


@pytest.mark.slow
def test_report_bounds_hold_for_a_large_synthetic_store():
    """50 combinations x 8 qualities x 100 images: the page data stays compact (two
    metrics here, to keep the suite fast; the closing note measured five)."""
    from jcsr_bench.report.html import render_report

    html = render_report(synthetic_view(50, 8, 100))
    data = page_data(html)
    assert len(data["datasets"][0]["combos"]) == 50
    assert len(data["datasets"][0]["bd"]) == 50  # every combination as anchor
    assert len(html) - html.index("const DATA") < 8_000_000


def synthetic_view(combos: int, qualities: int, images: int, metrics: int = 2):
    """An in-memory FolderView of ``combos`` x ``qualities`` x ``images`` smooth RD data
    with PSNR-RGB, MS-SSIM and (``metrics`` = 5) PSNR-Y, LPIPS and DISTS too."""

    def extra(psnr: float, q: int) -> dict:
        values = {"ms-ssim-rgb": 1 - 0.2 / q, "psnr-y": psnr + 1, "lpips": 0.4 / q,
                  "dists": 0.3 / q}
        return dict(list(values.items())[:metrics - 1])

    from jcsr_bench.report.coverage import AnchorChoice, FolderView
    from jcsr_bench.results.store import curves_from_rows

    rng = np.random.default_rng(0)
    rows = []
    for k in range(combos):
        codec, sr = f"c{k // 5}", f"s{k % 5}"
        for q in range(1, qualities + 1):
            for i in range(images):
                bpp = 0.05 * q * (1 + 0.01 * k) * (1 + 0.1 * rng.random())
                psnr = 22 + 6 * np.log2(q) + 0.05 * k + rng.normal(0, 0.3)
                rows.append({"dataset": "synthetic", "image": f"im{i:03d}", "codec": codec,
                             "quality_index": q, "image_index": i,
                             "quality": q, "sr": sr, "status": "ok", "error": None,
                             "values": {"bpp": bpp, "psnr-rgb": psnr, **extra(psnr, q)},
                             "reasons": {}})
    meta = {"datasets": {"synthetic": {"identity": "synthetic", "images": images}}}
    curves = curves_from_rows(rows, meta)
    return FolderView(rows, curves, meta, AnchorChoice(curves[0].label, "first"))


def test_the_image_budget_says_what_it_left_out(folder):
    from jcsr_bench.report.html import collect_images
    from jcsr_bench.run.recompute import Recompute

    out, registry = folder

    def recompute(dataset, name, runs, meta):
        return Recompute(registry, dataset, name, runs, meta, "cpu", print)

    views, notes = collect_images(out, recompute, budget=1)
    assert [v.name for v in views] == ["img0"]
    assert len(notes) == 1 and "tiny/img1, tiny/img2" in notes[0] and "--images" in notes[0]
    views, notes = collect_images(out, recompute, names=["all"], budget=1)
    assert [v.name for v in views] == ["img0", "img1", "img2"] and notes == []
    assert all(len(v.cells) == 4 * 4 for v in views)  # every combination at every quality


def test_the_runs_report_reads_the_codec_outputs_from_the_runs_own_cache(tmp_path):
    import fakes

    fakes.ENCODES.clear()
    summary = go(make_registry(tmp_path / "reg"), tmp_path, codecs=["fa"], srs=["up"],
                 cache_root=tmp_path / "own-cache", workers=1)  # encodes counted in-process
    assert summary.exit_code == 0
    assert page_data((tmp_path / "out" / "report.html").read_text())["images"]
    assert set(fakes.ENCODES.values()) == {1}  # the report's images encoded nothing again


def test_anchor_switch_equals_leaderboard_anchor_on_the_committed_samples_store():
    """Every anchor of the committed samples run (leaderboards/samples), every BD cell."""
    from jcsr_bench.report.html import render_report

    store = Path(__file__).resolve().parents[2] / "leaderboards" / "samples"
    data = page_data(render_report(load_view(store)))
    columns = [c for m in data["metrics"] for c in m["columns"]]
    checked = 0
    for dataset in data["datasets"]:
        for anchor in [c["label"] for c in dataset["combos"]]:
            text = leaderboard_from_store(store, anchor=anchor)
            head = next(line for line in text.splitlines() if line.startswith("| #"))
            shown = [c.strip() for c in head.strip("|").split("|")][2:-5]
            for label, cells in markdown_cells(text).items():
                if label != anchor:
                    page = dict(zip(columns, [c[0] for c in dataset["bd"][anchor][label]]))
                    assert [page[c] for c in shown] == cells, (anchor, label)
                    checked += len(cells)
    assert checked >= 4 * 3 * 4
