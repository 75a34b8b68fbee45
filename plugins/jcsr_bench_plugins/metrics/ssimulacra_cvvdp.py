"""SSIMULACRA 2 and ColorVideoVDP: the newest perceptual metrics (higher is better).

- ``ssimulacra2``: the PyPI ``ssimulacra2`` package (0.3.0, a numpy port of libjxl's
  tool) on the 8-bit sRGB image. It is *not* the reference: on the bundled photos it
  reads up to 6 points below libjxl's C++ ``ssimulacra2`` (docs/metrics.md); no build of
  the reference tool can be had from a package registry.
- ``cvvdp``: ColorVideoVDP (the ``cvvdp`` package, module ``pycvvdp``) with its
  ``standard_4k`` display model for images, units JOD (10 = no visible difference).

Both are opt-in; ``pip install "jcsr-bench[perceptual]"`` brings the packages.
"""

from __future__ import annotations

import io
from typing import Any

from jcsr_bench.imaging.quality import _check_pair
from jcsr_bench.kit.identity import make_identity
from jcsr_bench_plugins.metrics.jpeg_ai import _JpegAIMetric, lib_version

INSTALL = 'pip install "jcsr-bench[perceptual]"'
CVVDP_DISPLAY = "standard_4k"


def _hwc(image: Any) -> Any:
    """``uint8 [3, H, W]`` (any device) -> numpy ``[H, W, 3]`` uint8."""
    return image.permute(1, 2, 0).contiguous().cpu().numpy()


class _Package(_JpegAIMetric):
    """An opt-in metric backed by one package (the install remedy names its extra)."""

    def missing_weights(self) -> list[str]:
        return [text.replace('pip install "jcsr-bench[jpeg-ai]"', INSTALL)
                for text in super().missing_weights()]


class SSIMULACRA2(_Package):
    """SSIMULACRA 2 (the ``ssimulacra2`` package) on 8-bit sRGB; higher is better (100 =
    identical)."""

    name = "ssimulacra2"
    requires = ("ssimulacra2",)
    library = "ssimulacra2"
    identity = make_identity("metric:ssimulacra2", impl=lib_version("ssimulacra2"), range="srgb8",
                             v=1)
    MIN_SIDE = 8  # its first scale needs 8 px

    def _score(self, reference: Any, test: Any) -> float:
        from jcsr_bench.components import NotApplicable

        side = min(reference.image.shape[1:])
        if side < self.MIN_SIDE:
            raise NotApplicable(f"short side {side} px < {self.MIN_SIDE}: SSIMULACRA 2 "
                                "needs 8 px")
        from PIL import Image
        from ssimulacra2 import compute_ssimulacra2

        def png(image: Any) -> io.BytesIO:  # the package reads files: lossless, in memory
            buffer = io.BytesIO()
            Image.fromarray(_hwc(image)).save(buffer, format="PNG", compress_level=0)
            buffer.seek(0)
            return buffer

        ref = reference.derived("png", png)
        ref.seek(0)
        return float(compute_ssimulacra2(ref, png(test.image)))


class CVVDP(_Package):
    """ColorVideoVDP v0.5 on 8-bit sRGB with the ``standard_4k`` display model, in JOD
    (higher is better, 10 = no visible difference); runs on the run's device."""

    name = "cvvdp"
    requires = ("pycvvdp",)
    library = "cvvdp"
    identity = make_identity("metric:cvvdp", impl=lib_version("cvvdp"), display=CVVDP_DISPLAY, v=1)

    def __init__(self) -> None:
        self._metric: Any = None
        self._device = "cpu"

    def to(self, device: Any) -> CVVDP:
        if str(device) != str(self._device):
            self._metric = None
        self._device = device
        return self

    def compute(self, reference: Any, test: Any) -> float:
        import torch

        reference, test = _check_pair(reference, test)
        if self._metric is None:
            import pycvvdp

            self._metric = pycvvdp.cvvdp(display_name=CVVDP_DISPLAY,
                                         device=torch.device(str(reference.image.device)))
        with torch.inference_mode():
            jod, _ = self._metric.predict(test.image.permute(1, 2, 0),
                                          reference.image.permute(1, 2, 0), dim_order="HWC")
        return float(jod)
