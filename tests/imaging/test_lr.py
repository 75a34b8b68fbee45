"""LR generation (MATLAB / Pillow bicubic), the LR cache, and training patches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.imaging import lr as lrmod
from jcsr_bench.imaging.images import load_image
from jcsr_bench.imaging.lr import cached_lr, lr_for, make_lr, mod_crop, resize_matlab
from jcsr_bench.kit.errors import DataError, JcsrError

# -- an independent MATLAB imresize, written from its published definition ------------


def _keys_cubic(x: float) -> float:
    """Keys (1981) cubic convolution with a = -0.5 (MATLAB's 'bicubic')."""
    a = -0.5
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _imresize_1d(signal: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """One axis, pixel by pixel: centre (i + 0.5)/s - 0.5, kernel stretched by 1/s when
    shrinking (antialiasing), weights normalised, symmetric (edge-repeating) padding."""
    n = signal.shape[0]
    stretch = min(scale, 1.0)
    support = 2.0 / stretch
    pad = int(math.ceil(support)) + 2
    padded = np.pad(signal, [(pad, pad)] + [(0, 0)] * (signal.ndim - 1), mode="symmetric")
    out = np.zeros((out_len,) + signal.shape[1:])
    for i in range(out_len):
        centre = (i + 0.5) / scale - 0.5
        taps = range(int(math.floor(centre - support)), int(math.ceil(centre + support)) + 1)
        weights = np.array([stretch * _keys_cubic(stretch * (centre - j)) for j in taps])
        weights /= weights.sum()
        for w, j in zip(weights, taps):
            assert -pad <= j < n + pad
            out[i] += w * padded[j + pad]
    return out


def _imresize_reference(image: np.ndarray, out_hw: tuple[int, int],
                        scale: float | None = None) -> np.ndarray:
    """[C, H, W] float -> [C, h, w]: rows, then columns. The scale is ``out / in`` per axis
    unless given (MATLAB: ``imresize(x, scale)`` has ceil(in * scale) outputs)."""
    c, h, w = image.shape
    sh, sw = (out_hw[0] / h, out_hw[1] / w) if scale is None else (scale, scale)
    rows = _imresize_1d(np.moveaxis(image, 1, 0), out_hw[0], sh)  # [h, C, W]
    cols = _imresize_1d(np.moveaxis(rows, 2, 0), out_hw[1], sw)  # [w, h, C]
    return np.transpose(cols, (2, 1, 0))


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, h, w), np.uint8))


# -- MATLAB kernel -------------------------------------------------------------------


@pytest.mark.parametrize("shape,scale", [((3, 40, 36), 4), ((3, 27, 33), 3), ((3, 18, 22), 2)])
def test_matlab_matches_independent_imresize(shape, scale):
    hr = _image(shape[1], shape[2], seed=scale)
    out_hw = (shape[1] // scale, shape[2] // scale)
    ref = _imresize_reference(hr.double().numpy(), out_hw)
    got = resize_matlab(hr.double(), size=out_hw)
    assert got.dtype == torch.float64 and tuple(got.shape) == (3,) + out_hw
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-4, rtol=0)
    # and the uint8 LR is that result rounded half-up after clipping
    lr = make_lr(hr, scale, "matlab").numpy().astype(np.int64)
    expected = np.floor(np.clip(ref, 0, 255) + 0.5)
    safe = np.abs(np.clip(ref, 0, 255) % 1 - 0.5) > 1e-6  # away from rounding ties
    np.testing.assert_array_equal(lr[safe], expected[safe])


def test_matlab_scale_argument_and_numpy_input():
    x = np.random.default_rng(1).random((37, 29)) * 255
    got = resize_matlab(x, 0.25)  # MATLAB's multiplier, output ceil(in * scale)
    assert isinstance(got, np.ndarray) and got.shape == (10, 8)
    ref = _imresize_reference(x[None], (10, 8), scale=0.25)[0]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_matlab_upscale_without_antialias():
    x = np.random.default_rng(2).random((2, 7, 5))
    got = resize_matlab(x, 2.0)
    np.testing.assert_allclose(got, _imresize_reference(x, (14, 10)), atol=1e-10, rtol=0)


def test_matlab_invariants():
    const = np.full((3, 24, 20), 77.0)
    np.testing.assert_allclose(resize_matlab(const, 0.25), 77.0, atol=1e-9)
    ramp = np.tile(np.arange(64, dtype=np.float64), (32, 1))  # horizontal ramp
    out = resize_matlab(ramp, 0.25)
    # interior samples lie on the ramp at the output pixel centres: 4 j + 1.5
    centres = 4 * np.arange(16) + 1.5
    np.testing.assert_allclose(out[4, 3:-3], centres[3:-3], atol=1e-9)


def test_make_lr_shape_dtype_deterministic_and_modcrop():
    hr = _image(43, 50)
    lr = make_lr(hr)
    assert lr.dtype == torch.uint8 and tuple(lr.shape) == (3, 10, 12)
    assert torch.equal(lr, make_lr(hr))
    assert torch.equal(lr, make_lr(hr[:, :40, :48].clone()))
    assert torch.equal(make_lr(hr, 1), hr)


def test_pil_kernel_equals_pillow():
    hr = _image(43, 50, seed=3)
    cropped = hr[:, :40, :48].permute(1, 2, 0).numpy()
    ref = Image.fromarray(np.ascontiguousarray(cropped)).resize((12, 10), Image.Resampling.BICUBIC)
    got = make_lr(hr, 4, "pil").permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, np.asarray(ref))


def test_matlab_and_pil_agree_on_smooth_content():
    y, x = np.mgrid[0:64, 0:64]
    smooth = (127 + 100 * np.sin(x / 9.0) * np.cos(y / 7.0)).astype(np.uint8)
    hr = torch.from_numpy(np.stack([smooth] * 3))
    diff = (make_lr(hr, 4, "matlab").int() - make_lr(hr, 4, "pil").int()).abs()
    assert diff[:, 2:-2, 2:-2].max() <= 1  # same kernel: interior agrees to rounding


def test_mod_crop_keeps_top_left():
    hr = _image(10, 11)
    out = mod_crop(hr, 4)
    assert tuple(out.shape) == (3, 8, 8) and torch.equal(out, hr[:, :8, :8])
    with pytest.raises(DataError):
        mod_crop(_image(3, 8), 4)


def test_bad_kernel_and_scale():
    with pytest.raises(JcsrError, match="matlab"):
        make_lr(_image(8, 8), 4, "matlb")
    with pytest.raises(JcsrError, match="positive integer"):
        make_lr(_image(8, 8), 0)


# -- cache and official LR -----------------------------------------------------------


def test_cached_lr_written_reused_and_repaired(tmp_path, monkeypatch):
    hr = _image(32, 24)
    first = cached_lr(hr, 4, "matlab", cache=tmp_path)
    files = list(tmp_path.rglob("*.png"))
    assert len(files) == 1 and torch.equal(load_image(files[0]), first)

    def boom(*args, **kwargs):
        raise AssertionError("should come from the cache")

    monkeypatch.setattr(lrmod, "make_lr", boom)
    assert torch.equal(cached_lr(hr, 4, "matlab", cache=tmp_path), first)
    monkeypatch.undo()
    files[0].write_bytes(b"garbage")
    assert torch.equal(cached_lr(hr, 4, "matlab", cache=tmp_path), first)
    assert torch.equal(load_image(files[0]), first)
    cached_lr(hr, 4, "pil", cache=tmp_path)  # another kernel: another entry
    assert len(list(tmp_path.rglob("*.png"))) == 2


def test_cache_defaults_under_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path))
    cached_lr(_image(8, 8), 4)
    assert len(list((tmp_path / "lr").rglob("*.png"))) == 1


class _Official:
    def __init__(self, lr):
        self.lr = lr

    def lr_image(self, name, scale):
        return self.lr


def test_lr_for_prefers_dataset_lr_and_checks_size():
    hr = _image(41, 40)
    official = torch.zeros(3, 10, 10, dtype=torch.uint8)
    assert torch.equal(lr_for(hr, 4, dataset=_Official(official), name="x"), official)
    assert torch.equal(lr_for(hr, 4, dataset=_Official(None), name="x", cache=False), make_lr(hr))
    with pytest.raises(DataError, match="x: the dataset's LR image is 9x10"):
        lr_for(hr, 4, dataset=_Official(official[:, :, :9]), name="x")


def test_tampered_lr_cache_file_is_detected_and_regenerated(tmp_path):
    from jcsr_bench.imaging.images import save_image
    from jcsr_bench.kit.errors import CacheWarning

    hr = _image(32, 24)
    first = cached_lr(hr, 4, "matlab", cache=tmp_path)
    (png,) = tmp_path.rglob("*.png")
    save_image(torch.zeros_like(first), png)  # a same-shape black image swapped in
    with pytest.warns(CacheWarning, match=r"LR cache file .*\.png does not match its stored "
                                          "digest"):
        again = cached_lr(hr, 4, "matlab", cache=tmp_path)
    assert torch.equal(again, first) and torch.equal(load_image(png), first)
