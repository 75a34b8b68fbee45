"""Built-in metric components (registered in ``builtin_metrics``); see jcsr_bench.imaging.quality.

They declare ``accepts_prepared``: the engine hands them :class:`~jcsr_bench.imaging.quality.
PreparedImage` objects on the run's device (plain tensors work too).
"""

from __future__ import annotations

from jcsr_bench.imaging import quality as metrics
from jcsr_bench.kit.identity import make_identity


class PSNRRGB:
    """PSNR over all RGB channels, 8-bit, data range 255, per image."""

    name = "psnr-rgb"
    higher_is_better = True
    accepts_prepared = True
    identity = make_identity("metric:psnr-rgb", range=255, arithmetic="float32-compressai", v=2)

    def compute(self, reference, test) -> float:
        return metrics.psnr_rgb(reference, test)


class PSNRY:
    """PSNR on BT.601 luma (16-235), ``border`` pixels cropped (the engine sets the scale)."""

    name = "psnr-y"
    higher_is_better = True
    accepts_prepared = True

    def __init__(self, border: int = 4):
        if not isinstance(border, int) or border < 0:
            raise ValueError(f"psnr-y: border must be an integer >= 0, got {border!r}")
        self.border = border
        self.identity = make_identity("metric:psnr-y", border=border, luma="bt601", v=1)

    def compute(self, reference, test) -> float:
        return metrics.psnr_y(reference, test, border=self.border)


class MSSSIMRGB:
    """MS-SSIM (pytorch-msssim's values) on 8-bit RGB, data range 255, linear; n/a if a side
    is <= 160. Computed by jcsr_bench.imaging.ssim on the CPU, pytorch-msssim on CUDA."""

    name = "ms-ssim-rgb"
    higher_is_better = True
    accepts_prepared = True
    identity = make_identity("metric:ms-ssim-rgb", range=255, scales=5, v=1)

    def compute(self, reference, test) -> float:
        return metrics.ms_ssim_rgb(reference, test)
