"""Image-quality functions, exactly as DESIGN.md's "Metric conventions" define them.

Inputs are 8-bit RGB images (``torch.uint8``, ``[3, H, W]``) of the same shape; the
functions are pure (no state, no device).

- ``psnr_rgb``: data range 255, MSE over every RGB sample of one image, computed with
  CompressAI's evaluator's own float32 arithmetic so that the numbers equal its numbers
  bit for bit. The exact (float64) value differs by float32 rounding of 20·log10(255),
  the mean, the logarithm and the difference: under 2e-5 dB by a rounding analysis;
  measured at most 4.4e-6 dB on the bundled photos (JPEG q5–98, ×4 bicubic, noise;
  143 pairs) and 8.2e-6 dB on random pairs above 64 dB, where one float32 step of the
  result is already 7.6e-6 dB.
- ``psnr_y``: BT.601 luma in the 16-235 range (``Y = 16 + (65.481 R + 128.553 G +
  24.966 B) / 255``, not rounded, as BasicSR), ``border`` pixels cropped at each side.
- ``ms_ssim_rgb``: pytorch-msssim, data range 255, linear; 5 scales need a short side
  > 160 px, smaller images raise :class:`~jcsr_bench.NotApplicable` with the reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from jcsr_bench.components import NotApplicable

if TYPE_CHECKING:
    import torch

MS_SSIM_MIN_SIDE = 160  # (win_size 11 - 1) * 2**4: pytorch-msssim's bound for 5 scales
BT601_Y = (65.481, 128.553, 24.966)


def _check_pair(reference: torch.Tensor, test: torch.Tensor) -> None:
    from jcsr_bench.images import check_image

    check_image(reference, "reference image")
    check_image(test, "test image")
    if reference.shape != test.shape:
        raise ValueError(
            f"reference {list(reference.shape)} and test {list(test.shape)} differ in size"
        )


def _psnr_from_sse(sse: float, count: int, peak: float = 255.0) -> float:
    if sse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak * count / sse)


def psnr_rgb(reference: torch.Tensor, test: torch.Tensor) -> float:
    """PSNR in dB over all RGB samples, data range 255, as CompressAI's evaluator computes
    it: ``20 log10(255) - 10 log10(mean((a - b)^2))`` on float32 tensors."""
    _check_pair(reference, test)
    import torch

    mse = (reference.float() - test.float()).pow(2).mean()
    if mse.item() == 0:
        return math.inf
    return (20 * math.log10(255) - 10 * torch.log10(mse)).item()


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (16-235) of an 8-bit RGB image, float64 ``[H, W]``, not rounded."""
    import torch

    weights = torch.tensor(BT601_Y, dtype=torch.float64).view(3, 1, 1)
    return 16.0 + (image.to(torch.float64) * weights).sum(0) / 255.0


def psnr_y(reference: torch.Tensor, test: torch.Tensor, border: int = 4) -> float:
    """PSNR in dB on BT.601 luma, ``border`` pixels cropped at each side (SR convention)."""
    _check_pair(reference, test)
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    height, width = reference.shape[1:]
    if 2 * border >= min(height, width):
        raise NotApplicable(
            f"image {width}x{height} px has nothing left after cropping {border} px borders"
        )
    crop = (slice(None), slice(border, height - border), slice(border, width - border))
    y_ref, y_test = rgb_to_y(reference[crop]), rgb_to_y(test[crop])
    sse = float(((y_ref - y_test) ** 2).sum())
    return _psnr_from_sse(sse, y_ref.numel())


def ms_ssim_rgb(reference: torch.Tensor, test: torch.Tensor) -> float:
    """MS-SSIM (pytorch-msssim, 5 scales, data range 255) on 8-bit RGB, linear."""
    _check_pair(reference, test)
    height, width = reference.shape[1:]
    if min(height, width) <= MS_SSIM_MIN_SIDE:
        raise NotApplicable(
            f"short side {min(height, width)} px <= {MS_SSIM_MIN_SIDE}: the 5-scale MS-SSIM "
            "needs a short side > 160 px"
        )
    from pytorch_msssim import ms_ssim

    value = ms_ssim(reference.float().unsqueeze(0), test.float().unsqueeze(0), data_range=255)
    return float(value.item())
