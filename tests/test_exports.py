"""Exports: CompressAI-layout JSON (read back by CompressAI's plot tool) and flat CSV."""

from __future__ import annotations

import csv
import json

import pytest

from jcsr_bench.exports import compressai_json, write_compressai_json, write_csv
from jcsr_bench.results import Curve, Point


def _curve():
    return Curve("kodak", "bmshj", "esrgan-b1", [
        Point(1, {"bpp": 0.1, "psnr-rgb": 27.5, "ms-ssim-rgb": 0.91, "encode_s": 0.2}),
        Point(2, {"bpp": 0.2, "psnr-rgb": 29.0, "ms-ssim-rgb": None, "encode_s": 0.3},
              {"ms-ssim-rgb": "n/a for 1 of 2 image(s): too small"}, images=2),
    ])


def test_compressai_layout_is_read_by_compressai_plot_tool(tmp_path):
    plot = pytest.importorskip("compressai.utils.plot.__main__")
    (path,) = write_compressai_json([_curve()], tmp_path, "test")
    assert path == tmp_path / "kodak" / "bmshj+esrgan-b1.json"
    data = json.loads(path.read_text())
    assert data["name"] == "bmshj+esrgan-b1" and "kodak" in data["description"]
    assert data["results"]["bpp"] == [0.1, 0.2]
    assert data["results"]["ms-ssim-rgb"] == [0.91, None]
    assert data["results"]["encoding_time"] == [0.2, 0.3]
    assert data["n/a"]["ms-ssim-rgb"] == {"2": "n/a for 1 of 2 image(s): too small"}
    parsed = plot.parse_json_file(path, "psnr")
    assert parsed == {"name": "bmshj+esrgan-b1", "xs": [0.1, 0.2], "ys": [27.5, 29.0]}


def test_non_finite_values_export_as_null():
    curve = Curve("d", "c", "s", [Point(1, {"bpp": 0.1, "psnr-rgb": float("inf")})])
    data = compressai_json(curve)
    assert data["results"]["psnr-rgb"] == [None]
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
