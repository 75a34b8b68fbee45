"""jcsr_bench.imaging.ssim against pytorch-msssim itself, on real photographs (scikit-image's).

The acceptance bound is 1e-6 on the linear MS-SSIM; the implementation reproduces
pytorch-msssim's float32 arithmetic, so the differences seen are ~1e-7 (a float32 ulp).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_msssim import ms_ssim as reference_ms_ssim
from pytorch_msssim import ssim as reference_ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d
from skimage import data

from jcsr_bench.imaging import ssim

TOLERANCE = 1e-6
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")


def _photo(name: str) -> np.ndarray:
    photo = getattr(data, name)()
    return np.ascontiguousarray(photo[0] if isinstance(photo, tuple) else photo)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).contiguous()


def _jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _bicubic(array: np.ndarray) -> np.ndarray:
    """Down ×4 and back up with Pillow's bicubic: what `--sr bicubic` produces."""
    h, w = array.shape[:2]
    small = Image.fromarray(array).resize((max(1, w // 4), max(1, h // 4)), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC))


def _noise(array: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(array + rng.normal(0, 12, array.shape), 0, 255).astype(np.uint8)


DEGRADATIONS = {"jpeg10": lambda a: _jpeg(a, 10), "jpeg60": lambda a: _jpeg(a, 60),
                "bicubic": _bicubic, "noise": _noise}


def _reference(x: torch.Tensor, y: torch.Tensor, fn=reference_ms_ssim) -> float:
    return fn(x[None].float(), y[None].float(), data_range=255).item()


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("degradation", DEGRADATIONS)
def test_ms_ssim_equals_pytorch_msssim_on_photos(name, degradation):
    photo = _photo(name)
    x, y = _tensor(photo), _tensor(DEGRADATIONS[degradation](photo))
    assert abs(ssim.ms_ssim(x, y) - _reference(x, y)) <= TOLERANCE


# odd and even sides, both odd, > 160 (5 scales) and crops at odd offsets
CROPS = [(161, 161, 0, 0), (171, 233, 3, 7), (300, 257, 11, 1), (255, 511, 0, 1),
         (401, 198, 5, 50), (322, 290, 1, 1)]


@pytest.mark.parametrize(("height", "width", "top", "left"), CROPS)
def test_ms_ssim_equals_pytorch_msssim_on_odd_crops(height, width, top, left):
    photo = _photo("astronaut")[top:top + height, left:left + width]
    x = _tensor(photo)
    for degradation in DEGRADATIONS.values():
        y = _tensor(degradation(np.ascontiguousarray(photo)))
        assert abs(ssim.ms_ssim(x, y) - _reference(x, y)) <= TOLERANCE


def test_pooling_bands_and_prepared_reference_do_not_change_values():
    """Pooling in bands of a few rows and one prepared reference serving many tests give
    pytorch-msssim's values; the reference's pyramid is computed once."""
    photo = _photo("coffee")[:301, :433]
    x = _tensor(photo)
    tests = [_tensor(d(np.ascontiguousarray(photo))) for d in DEGRADATIONS.values()]
    expected = [_reference(x, y) for y in tests]
    prepared = ssim.SSIMReference(x, band_pixels=97)
    assert [level.shape[1:] for level in prepared.pyramid] == \
        [(301, 433), (151, 217), (76, 109), (38, 55), (19, 28)]
    for y, value in zip(tests, expected, strict=True):
        assert abs(ssim.ms_ssim(prepared, y) - value) <= TOLERANCE
    assert ssim.ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)


def test_filtered_values_are_pytorch_msssims_bit_for_bit():
    """The kernel's per-level sums equal float64 sums of pytorch-msssim's own float32
    SSIM and contrast maps exactly: the same filtered values, the same map arithmetic."""
    from pytorch_msssim.ssim import _ssim

    photo = _photo("astronaut")[:200, :260]
    x, y = _tensor(photo), _tensor(_jpeg(photo, 20))
    win = _fspecial_gauss_1d(11, 1.5).repeat(3, 1, 1, 1)
    ssim_map_mean, cs_mean = ssim.SSIMReference(x, levels=1).level_means(y)[0]
    maps = {}  # pytorch-msssim's own maps, caught where it flattens them
    original = torch.flatten

    def keep(tensor, *args):
        maps.setdefault("ssim" if "ssim" not in maps else "cs", tensor)
        return original(tensor, *args)

    torch.flatten = keep
    try:
        _ssim(x.float()[None], y.float()[None], data_range=255, win=win)
    finally:
        torch.flatten = original

    def sequential_mean(planes):  # row by row, left to right, in float64: the kernel's order
        rows = np.cumsum(planes.double().numpy(), axis=2)[:, :, -1]
        return np.cumsum(rows, axis=1)[:, -1] / planes[0].numel()

    assert np.array_equal(ssim_map_mean, sequential_mean(maps["ssim"][0]))
    assert np.array_equal(cs_mean, sequential_mean(maps["cs"][0]))


def test_float_inputs_and_ssim_single_scale():
    photo = _photo("chelsea")
    x, y = _tensor(photo), _tensor(_jpeg(photo, 20))
    assert abs(ssim.ms_ssim(x.float(), y.float()) - _reference(x, y)) <= TOLERANCE
    assert abs(ssim.ssim(x, y) - _reference(x, y, reference_ssim)) <= TOLERANCE
    small = _tensor(photo[:40, :50])
    assert abs(ssim.ssim(small, _tensor(_noise(photo[:40, :50])))
               - _reference(small, _tensor(_noise(photo[:40, :50])), reference_ssim)) <= TOLERANCE


def test_window_and_size_bound_are_pytorch_msssims():
    assert torch.equal(ssim.gaussian_window(), _fspecial_gauss_1d(11, 1.5).view(-1))
    assert ssim.min_side() == 160
    image = _tensor(_photo("astronaut")[:160, :300])
    with pytest.raises(ValueError, match="short side 160 px must be > 160"):
        ssim.ms_ssim(image, image)
    with pytest.raises(ValueError, match="differ in size"):
        ssim.ms_ssim(_tensor(_photo("astronaut")), image)
    prepared = ssim.SSIMReference(_tensor(_photo("astronaut")))
    with pytest.raises(ValueError, match="differ in size"):
        ssim.ms_ssim(prepared, _tensor(_photo("astronaut")[:, :400]))


@pytest.mark.slow
def test_memory_is_bounded_by_bands():
    """3 megapixels: pytorch-msssim holds ~0.9 GB of float planes; the banded path's peak
    RSS grows by far less (bands of ~8 MB, float32 pyramids of a third of the image)."""
    script = textwrap.dedent("""
        import json, resource, torch
        from jcsr_bench.imaging import ssim
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (3, 1500, 2000), dtype=torch.uint8, generator=g)
        y = x.clone().bitwise_and_(0xF0)  # a degradation without big temporaries
        ssim.ms_ssim(x[:, :200, :200].contiguous(), y[:, :200, :200].contiguous())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        value = ssim.ms_ssim(x, y)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"value": value, "growth_mb": (after - before) / 1024}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0 < result["value"] < 1
    assert result["growth_mb"] < 150, result


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_uses_pytorch_msssim_and_agrees_with_cpu():
    photo = _photo("astronaut")
    x, y = _tensor(photo), _tensor(_jpeg(photo, 30))
    on_gpu = ssim.ms_ssim(ssim.SSIMReference(x.cuda()), y.cuda())
    assert abs(on_gpu - ssim.ms_ssim(x, y)) <= TOLERANCE
    assert abs(on_gpu - _reference(x, y)) <= TOLERANCE
