"""The JPEG AI metrics' bounded-memory paths (banded, pre-pooled, tiled) against the
libraries run on the whole image (issue 28: a 24 MP photo under 2 GB).

Banded paths must equal the whole-image library to rounding; tiled ones (VIF, IW-SSIM,
VMAF above ``TILE_PIXELS``) are a documented approximation, bounded here on tiles far
smaller than the real ones (so far more tile border than a 24 MP photo has).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.imaging import color
from jcsr_bench.imaging.quality import prepare
from jcsr_bench_plugins.metrics import jpeg_ai

piq = pytest.importorskip("piq")


def _photo_pair(height: int = 400, width: int = 600, quality: int = 30):
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((width, height), Image.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    decoded = Image.open(buffer).convert("RGB")
    return [torch.from_numpy(np.array(p)).permute(2, 0, 1).contiguous()
            for p in (photo, decoded)]


REF, TEST = _photo_pair()


def _score(metric, ref=REF, test=TEST) -> float:
    return metric.compute(prepare(ref), prepare(test))


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("height,width,limit", [(400, 600, 10**6), (4000, 6000, 3_000_000),
                                                (37, 1001, 5000), (1, 1, 1)])
def test_tiles_cover_the_image_once_within_the_limit(height, width, limit):
    regions = jpeg_ai.tiles(height, width, limit)
    cover = np.zeros((height, width), dtype=int)
    for rows, cols in regions:
        cover[rows, cols] += 1
        assert (rows.stop - rows.start) * (cols.stop - cols.start) <= limit
    assert (cover == 1).all()
    if height * width <= limit:
        assert regions == [(slice(0, height), slice(0, width))]


def test_24_mp_tiles_are_nine_near_3_mp_tiles():
    regions = jpeg_ai.tiles(4000, 6000, jpeg_ai.TILE_PIXELS)
    assert len(regions) == 9
    assert {(r.stop - r.start, c.stop - c.start) for r, c in regions} == {(1333, 2000),
                                                                          (1334, 2000)}


def test_psnr709_from_int16_codes_equals_the_float_planes():
    planes = [color.yuv709(image) for image in (REF, TEST)]
    for index, cls in enumerate((jpeg_ai.PSNRY709, jpeg_ai.PSNRU709, jpeg_ai.PSNRV709)):
        a, b = (color.codes(p[index]) for p in planes)
        expected = 10 * np.log10(1023**2 * a.numel() / float(((a - b) ** 2).sum()))
        assert _score(cls()) == pytest.approx(float(expected), abs=1e-12)


def test_ms_ssim_y_banded_equals_pytorch_msssim_on_the_10_bit_codes():
    import pytorch_msssim

    a, b = (color.codes(color.yuv709(image)[0]).float()[None, None] for image in (REF, TEST))
    theirs = pytorch_msssim.ms_ssim(b, a, data_range=1023).item()
    assert abs(_score(jpeg_ai.MSSSIMY()) - theirs) <= 1e-6


def test_psnr_hvs_in_bands_equals_the_library_on_the_whole_plane(monkeypatch):
    from psnr_hvsm import psnr_hvs_hvsm

    ref, test = _photo_pair(203, 301)  # padding on both sides, in the last band
    monkeypatch.setattr(jpeg_ai, "BAND_PIXELS", 16 * 301)  # 16-row bands
    planes = [color.yuv709(image)[0].double().numpy() for image in (ref, test)]
    padded = [np.pad(p, ((0, -203 % 8), (0, -301 % 8)), mode="edge") for p in planes]
    with np.errstate(invalid="ignore", divide="ignore"):  # flat blocks, masked by it
        hvs, hvs_m = psnr_hvs_hvsm(*padded)
    assert abs(_score(jpeg_ai.PSNRHVS(), ref, test) - hvs) < 1e-9
    assert abs(_score(jpeg_ai.PSNRHVSM(), ref, test) - hvs_m) < 1e-9


def test_fsim_pooled_in_bands_equals_piq_on_the_whole_image(monkeypatch):
    monkeypatch.setattr(jpeg_ai, "BAND_PIXELS", 4096)  # bands of 6 rows (pool factor 2)
    theirs = piq.fsim(color.rgb10(TEST)[None], color.rgb10(REF)[None], data_range=1.0,
                      chromatic=True).item()
    assert _rel(_score(jpeg_ai.FSIM()), theirs) < 1e-6


@pytest.mark.parametrize("band_pixels", [jpeg_ai.BAND_PIXELS, 4096])
def test_nlpd_level_by_level_in_bands_equals_the_whole_pyramid(monkeypatch, band_pixels):
    """Banded convolutions and freed intermediates keep the pyramid's values: bit for bit
    in one band, to float32 rounding in many (oneDNN picks its 3x3 kernel by shape)."""
    import torch.nn.functional as F

    monkeypatch.setattr(jpeg_ai, "BAND_PIXELS", band_pixels)
    y = color.yuv709(REF)[0][None, None]
    filt = torch.tensor(jpeg_ai._LAPLACIAN)[None, None]
    level = y
    for ours, dn, sigma in zip(jpeg_ai.nlpd_pyramid(y.clone()), jpeg_ai._DN, jpeg_ai._SIGMAS,
                               strict=True):
        low = F.conv2d(F.pad(level, (2, 2, 2, 2), mode="reflect"), filt, stride=2)
        up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True)
        up = F.conv2d(F.pad(up, (2, 2, 2, 2), mode="reflect"), filt)
        if up.shape != level.shape:
            up = F.interpolate(up, list(level.shape[2:]))
        band = level - up
        local = F.conv2d(F.pad(band.abs(), (1, 1, 1, 1), mode="reflect"),
                         torch.tensor(dn)[None, None])
        expected = band / (sigma + local)
        if band_pixels >= REF[0].numel():
            assert torch.equal(ours, expected)
        else:
            assert torch.allclose(ours, expected, rtol=0, atol=1e-6)
        level = low


@pytest.mark.parametrize("metric,bound", [(jpeg_ai.VIF, 5e-3), (jpeg_ai.IWSSIM, 1e-4),
                                          (jpeg_ai.VMAF, 1e-3)])
def test_tiled_metrics_stay_near_the_whole_image_value(monkeypatch, metric, bound):
    """Six 200x200 tiles of a 400x600 image: the tile mean within ``bound`` (relative) of
    the whole image; at 24 MP, 3 MP tiles differ far less (docs/metrics.md)."""
    if metric is jpeg_ai.VMAF:
        pytest.importorskip("vmaf_torch")
    whole = _score(metric())
    # IW-SSIM's tiles are half the limit: 200x200 tiles for every metric
    monkeypatch.setattr(jpeg_ai, "TILE_PIXELS", 80_000 if metric is jpeg_ai.IWSSIM else 40_000)
    monkeypatch.setattr(jpeg_ai, "ADM_TILE_PIXELS", 80_000)  # VMAF's ADM on 2 x 2 tiles
    tiled = _score(metric())
    assert tiled != whole  # the tiles are really used
    assert _rel(tiled, whole) < bound, (whole, tiled)



@pytest.mark.parametrize("height,width,rows,cols", [(400, 600, 2, 2), (4000, 6000, 2, 2),
                                                    (301, 997, 3, 5)])
def test_adm_tiles_count_exactly_the_whole_images_adm_region(height, width, rows, cols):
    """Each ADM tile's own 10 % border is its overlap: the counted cores partition the
    whole image's counted centre (to a pixel of rounding)."""
    counted = np.zeros((height, width), dtype=int)
    for r, c in jpeg_ai.adm_tiles(height, width, rows, cols):
        h, w = r.stop - r.start, c.stop - c.start
        top, left = round(0.1 * h), round(0.1 * w)
        counted[r.start + top:r.stop - top, c.start + left:c.stop - left] += 1
    centre = counted[round(0.1 * height) + 1:-round(0.1 * height) - 1,
                     round(0.1 * width) + 1:-round(0.1 * width) - 1]
    assert (centre >= 1).all()
    assert (counted > 1).mean() < 0.01  # overlaps of the counted parts: rounding only
    assert jpeg_ai.adm_tiles(height, width, 1, 1) == [(slice(0, height), slice(0, width))]


def test_vmaf_from_pooled_features_equals_vmaf_torch_on_one_tile():
    """The features-then-SVM path is vmaf-torch's own forward when the image is one tile."""
    vmaf_torch = pytest.importorskip("vmaf_torch")
    net = vmaf_torch.VMAF(temporal_pooling=False, enable_motion=False, clip_score=True).eval()
    a, b = (color.codes(color.yuv709(image)[0]).float()[None, None] / 4.0
            for image in (REF, TEST))
    with torch.inference_mode():
        assert _score(jpeg_ai.VMAF()) == net(a, b).item()
