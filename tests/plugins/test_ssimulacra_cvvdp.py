"""SSIMULACRA 2 and ColorVideoVDP (issue 28).

Neither has a second implementation that a package registry offers:

- libjxl's reference ``ssimulacra2`` tool is not packaged (Debian's libjxl-devtools 0.7
  carries SSIMULACRA v1 only), so the PyPI port is checked against the reference tool's
  values on these cases, pinned from a build of cloudinary/ssimulacra2 (SSIMULACRA 2.1);
  the port reads up to 6.1 points lower (docs/metrics.md states it).
- ColorVideoVDP has one implementation (its MATLAB folder wraps the Python code): it is
  checked against its own published example values when the example image is given
  (``JCSR_BENCH_CVVDP_EXAMPLE=wavy_facade.png``), and against pinned values and its
  defining property (10 JOD for identical images) always.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.components import NotApplicable
from jcsr_bench.imaging.quality import prepare
from jcsr_bench_plugins.metrics.ssimulacra_cvvdp import CVVDP, SSIMULACRA2


def _crop(img: np.ndarray, size: int = 256) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


def _cases():
    from skimage import data

    for name in ("astronaut", "coffee"):
        ref = _crop(getattr(data, name)())
        for q in (10, 30, 70):
            yield f"{name}-{q}", ref, _jpeg(ref, q)


def _score(metric, ref, test):
    t = lambda a: prepare(torch.from_numpy(a).permute(2, 0, 1).contiguous())  # noqa: E731
    return metric.compute(t(ref), t(test))


#: libjxl's ssimulacra2 (SSIMULACRA 2.1, cloudinary/ssimulacra2 built from source) on
#: these cases (PNG files of the same pixels).
SSIMULACRA2_REFERENCE = {"astronaut-10": 16.5705, "astronaut-30": 57.4882,
                         "astronaut-70": 75.0028, "coffee-10": 12.4983,
                         "coffee-30": 55.5116, "coffee-70": 72.6819}


def test_ssimulacra2_against_the_reference_tool_within_the_stated_deviation():
    pytest.importorskip("ssimulacra2")
    ours = {name: _score(SSIMULACRA2(), ref, test) for name, ref, test in _cases()}
    diffs = {n: ours[n] - SSIMULACRA2_REFERENCE[n] for n in ours}
    assert all(-6.1 <= d <= 0 for d in diffs.values()), diffs  # docs: up to 6.1 lower
    assert max(abs(d) for n, d in diffs.items() if n.endswith("70")) < 1.0
    # the same ranking of every case as the reference tool
    assert sorted(ours, key=ours.get) == sorted(ours, key=SSIMULACRA2_REFERENCE.get)


def test_ssimulacra2_identical_is_100_and_tiny_is_na():
    pytest.importorskip("ssimulacra2")
    _, ref, _ = next(_cases())
    assert _score(SSIMULACRA2(), ref, ref) == 100.0
    with pytest.raises(NotApplicable, match="8 px"):
        _score(SSIMULACRA2(), ref[:6, :6], ref[:6, :6])


#: cvvdp 0.5.7 on these cases (its `cvvdp` CLI on PNG files agreed within 4e-5 JOD).
CVVDP_VALUES = {"astronaut-10": 9.1406, "astronaut-30": 9.6841, "astronaut-70": 9.8126,
                "coffee-10": 9.0168, "coffee-30": 9.6640, "coffee-70": 9.8137}


@pytest.mark.slow
def test_cvvdp_pinned_values_and_identical_images():
    pytest.importorskip("pycvvdp")
    metric = CVVDP()
    for name, ref, test in _cases():
        assert abs(_score(metric, ref, test) - CVVDP_VALUES[name]) < 1e-3, name
    assert _score(metric, ref, ref) == pytest.approx(10.0, abs=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("JCSR_BENCH_CVVDP_EXAMPLE"),
                    reason="set JCSR_BENCH_CVVDP_EXAMPLE to ColorVideoVDP's "
                    "example_media/wavy_facade.png")
def test_cvvdp_reproduces_its_published_blur_example():
    """examples/ex_simple_image.py: "Blur - Quality: 8.514 JOD" (16-bit PNG, sigma 2)."""
    pycvvdp = pytest.importorskip("pycvvdp")
    from scipy.ndimage import gaussian_filter

    image = pycvvdp.load_image_as_array(os.environ["JCSR_BENCH_CVVDP_EXAMPLE"])
    blur = np.stack([gaussian_filter(image[..., c], 2, mode="nearest", truncate=2.0)
                     for c in range(3)], -1)
    metric = pycvvdp.cvvdp(display_name="standard_4k", device=torch.device("cpu"))
    jod, _ = metric.predict(blur, image, dim_order="HWC")
    assert float(jod) == pytest.approx(8.514, abs=1e-3)


def test_missing_packages_name_the_perceptual_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pycvvdp" else real(name, *a))
    (text,) = CVVDP().missing_weights()
    assert "cvvdp" in text and 'pip install "jcsr-bench[perceptual]"' in text
