"""Exports: CompressAI-layout JSON (read back by CompressAI's plot tool) and flat CSV."""

from __future__ import annotations

import csv
import json

import pytest

from jcsr_bench.report.exports import compressai_json, write_compressai_json, write_csv
from jcsr_bench.results.curves import Curve, Point


def _curve():
    return Curve("kodak", "bmshj", "esrgan-b1", [
        Point(1, {"bpp": 0.1, "psnr-rgb": 27.5, "ms-ssim-rgb": 0.91, "encode_s": 0.2}),
        Point(2, {"bpp": 0.2, "psnr-rgb": 29.0, "ms-ssim-rgb": None, "encode_s": 0.3},
              {"ms-ssim-rgb": "n/a for 1 of 2 image(s): too small"}, images=2),
    ])


def _complete():
    return Curve("kodak", "jpeg", "bicubic", [
        Point(1, {"bpp": 0.15, "psnr-rgb": 26.0, "ms-ssim-rgb": 0.88}, images=2),
        Point(2, {"bpp": 0.3, "psnr-rgb": 28.0, "ms-ssim-rgb": 0.93}, images=2),
        Point(3, {"bpp": None, "psnr-rgb": None, "ms-ssim-rgb": None},
              {m: "1 of 2 image(s) failed (first: b: truncated)"
               for m in ("bpp", "psnr-rgb", "ms-ssim-rgb")}, images=1),
    ])


def test_compressai_layout_is_read_by_compressai_plot_tool(tmp_path):
    plot = pytest.importorskip("compressai.utils.plot.__main__")
    partial, complete = write_compressai_json([_curve(), _complete()], tmp_path, "test")
    assert partial == tmp_path / "kodak" / "bmshj+esrgan-b1.json"
    data = json.loads(partial.read_text())
    assert data["name"] == "bmshj+esrgan-b1" and "kodak" in data["description"]
    assert data["results"]["bpp"] == [0.1, 0.2]
    assert data["results"]["encoding_time"] == [0.2, 0.3]
    # a metric n/a at some point is left out of "results" (the tool computes on the
    # lists); its values and the reason stay in keys the tool ignores
    assert "ms-ssim-rgb" not in data["results"]
    assert data["incomplete"]["ms-ssim-rgb"] == [0.91, None]
    assert data["n/a"]["ms-ssim-rgb"] == {"2": "n/a for 1 of 2 image(s): too small"}
    # a point without a rate is left out of every list, with the reason
    other = json.loads(complete.read_text())
    assert other["results"]["quality"] == [1, 2] and other["results"]["bpp"] == [0.15, 0.3]
    assert other["results"]["ms-ssim-rgb"] == [0.88, 0.93] and other["images"] == [2, 2]
    assert other["points_left_out"] == {"3": "1 of 2 image(s) failed (first: b: truncated)"}
    for path in (partial, complete):
        assert None not in json.loads(path.read_text())["results"]["bpp"]
    parsed = plot.parse_json_file(partial, "psnr")
    assert parsed == {"name": "bmshj+esrgan-b1", "xs": [0.1, 0.2], "ys": [27.5, 29.0]}
    # the tool itself, as a user runs it (Agg backend, -o file): no TypeError on null
    import matplotlib.pyplot as plt

    small = ["--figsize", "1.5", "1"]  # the tool saves at 300 dpi: keep the test quick
    try:
        plot.main(["-f", str(partial), str(complete), "-m", "psnr", "-o",
                   str(tmp_path / "a.png"), *small])
        plot.main(["-f", str(complete), "-m", "ms-ssim", "-o", str(tmp_path / "b.png"), *small])
        with pytest.raises(ValueError, match='metric "ms-ssim-rgb" not available'):
            plot.main(["-f", str(partial), "-m", "ms-ssim", "-o", str(tmp_path / "c.png")])
    finally:
        plt.close("all")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0


def test_non_finite_values_are_never_written():
    curve = Curve("d", "c", "s", [Point(1, {"bpp": 0.1, "psnr-rgb": float("inf")}),
                                  Point(2, {"bpp": 0.2, "psnr-rgb": 30.0})])
    data = compressai_json(curve)
    assert "psnr-rgb" not in data["results"] and data["incomplete"]["psnr-rgb"] == [None, 30.0]
    assert data["n/a"]["psnr-rgb"] == {"1": "not a finite number (inf)"}
    json.dumps(data, allow_nan=False)  # strict JSON


def test_csv_has_one_row_per_image_and_every_metric(tmp_path):
    rows = [
        {"dataset": "d", "image": "a", "codec": "c", "quality": 1, "sr": "s", "status": "ok",
         "error": None, "values": {"bpp": 0.125, "psnr-rgb": 31.0, "custom": 2.0,
                                   "ms-ssim-rgb": None},
         "reasons": {"ms-ssim-rgb": "short side 100 px <= 160"}},
        {"dataset": "d", "image": "b", "codec": "c", "quality": 1, "sr": "s",
         "status": "error", "error": "boom", "values": {}, "reasons": {}},
    ]
    path = write_csv(rows, tmp_path / "r.csv")
    with path.open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0])[:9] == ["dataset", "image", "codec", "quality", "sr", "status",
                                  "error", "bpp", "psnr-rgb"]
    assert float(table[0]["bpp"]) == 0.125 and table[0]["custom"] == "2.0"
    assert table[0]["ms-ssim-rgb"] == "" and "160" in table[0]["ms-ssim-rgb reason"]
    assert table[1]["status"] == "error" and table[1]["error"] == "boom"
