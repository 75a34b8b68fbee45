"""RD plots: files per dataset and metric, labels, anchor, hostile names, reproducibility."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from jcsr_bench.report.plots import BPP_LABEL, plot_rd
from jcsr_bench.results.curves import Curve, Point

R1 = [0.948776, 0.459360, 0.248644, 0.135824]
Q1 = [40.037, 38.615, 36.845, 34.851]


def curve(codec, sr, scale=1.0, dataset="kodak", ms=True):
    points = [
        Point(
            i,
            {
                "bpp": r * scale,
                "psnr-rgb": q,
                "ms-ssim-rgb": 1 - 10 ** (-(q - 20) / 10) if ms else None,
            },
            {} if ms else {"ms-ssim-rgb": "image too small"},
            3,
        )
        for i, (r, q) in enumerate(zip(R1, Q1))
    ]
    return Curve(dataset, codec, sr, points)


@pytest.fixture(scope="module")
def plotted(tmp_path_factory):
    curves = [
        curve("bmshj", "esrgan-b1"),
        curve("a|b<script>", "$x^2$_", 0.9),
        curve("_hidden", "sr", 1.2, ms=False),
        curve("bmshj", "esrgan-b1", dataset="my data/set"),
    ]
    out = tmp_path_factory.mktemp("rd")
    paths = plot_rd(curves, out, anchor=("bmshj", "esrgan-b1"))
    return curves, out, paths


def svg_texts(path):
    ns = "{http://www.w3.org/2000/svg}"
    return ["".join(t.itertext()) for t in ET.parse(path).getroot().iter(f"{ns}text")]


def test_one_png_svg_and_pdf_per_dataset_and_metric(plotted):
    _, out, paths = plotted
    names = sorted(p.name for p in paths)
    assert len(paths) == 12 and all(p.parent == out and p.stat().st_size > 0 for p in paths)
    assert "rd-kodak-psnr-rgb.png" in names and "rd-kodak-ms-ssim-rgb.svg" in names
    assert "rd-kodak-ms-ssim-rgb.pdf" in names
    odd = [n for n in names if not n.startswith("rd-kodak")]
    assert len(odd) == 6 and all("/" not in n and " " not in n for n in odd)
    with Image.open(out / "rd-kodak-psnr-rgb.png") as im:
        assert im.format == "PNG" and im.size == (900, 600)
        # Not blank: many distinct colours (curves, text, grid).
        assert len(im.convert("RGB").getcolors(maxcolors=100000)) > 20


def test_axes_legend_and_anchor(plotted):
    _, out, _ = plotted
    texts = svg_texts(out / "rd-kodak-psnr-rgb.svg")
    assert BPP_LABEL in texts
    assert "PSNR-RGB (dB)" in texts
    assert "bmshj+esrgan-b1 (anchor)" in texts
    ms = svg_texts(out / "rd-kodak-ms-ssim-rgb.svg")
    assert "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)" in ms
    # A curve without MS-SSIM values is still listed, marked, and a leading '_' kept.
    assert " _hidden+sr (no data)" in ms


def test_hostile_names_are_plain_text(plotted):
    _, out, _ = plotted
    raw = (out / "rd-kodak-psnr-rgb.svg").read_text()
    assert "<script" not in raw
    texts = svg_texts(out / "rd-kodak-psnr-rgb.svg")
    assert "a|b<script>+$x^2$_" in texts  # no mathtext, shown literally


def test_anchor_drawn_thicker_than_the_others(plotted):
    _, out, _ = plotted
    root = ET.parse(out / "rd-kodak-psnr-rgb.svg").getroot()
    lines = []  # (stroke width in pt, colour) of every stroked, unfilled path
    for path in root.iter("{http://www.w3.org/2000/svg}path"):
        style = dict(
            (k.strip(), v.strip())
            for k, v in (item.split(":", 1) for item in path.get("style", "").split(";") if item)
        )
        if style.get("fill") == "none" and "stroke-width" in style:
            lines.append((float(style["stroke-width"]), style.get("stroke")))
    thick = {colour for width, colour in lines if width == 3.5}
    assert thick == {"#000000"}  # only the anchor (curve + legend entry), in black
    assert any(width == 1.5 and colour != "#000000" for width, colour in lines)


def test_rerendering_gives_identical_files(plotted, tmp_path):
    curves, out, paths = plotted
    again = plot_rd(curves, tmp_path, anchor=("bmshj", "esrgan-b1"))
    assert [p.name for p in again] == [p.name for p in paths]
    for a, b in zip(paths, again):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, jcsr_bench.report.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
