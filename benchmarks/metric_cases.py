"""The image pair and the metric implementations that benchmarks/bench_metrics.py times
(a module of its own so that the memory measurement's fresh process imports the same code)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import torch


def pair(height: int, width: int) -> list[torch.Tensor]:
    """A real photograph at (height, width) and its JPEG q30 decode, uint8 [3, H, W]."""
    import numpy as np
    from PIL import Image
    from skimage import data

    def tile(photo: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(photo).resize((512, 400), Image.BICUBIC))

    top = np.concatenate([tile(data.astronaut()), tile(data.coffee())], 1)
    bottom = np.concatenate([tile(data.rocket()), tile(data.chelsea())], 1)
    photo = Image.fromarray(np.concatenate([top, bottom], 0)).resize((width, height),
                                                                    Image.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=30)
    decoded = Image.open(buffer).convert("RGB")
    return [torch.from_numpy(np.array(p)).permute(2, 0, 1).contiguous()
            for p in (photo, decoded)]


def implementation(metric: str, kind: str, x: torch.Tensor,
                   y: torch.Tensor) -> Callable[[], float]:
    """A no-argument callable computing ``metric`` on (x, y) the ``kind`` way."""
    from jcsr_bench.imaging import quality as metrics
    from jcsr_bench_plugins.metrics.distortion import MSSSIMRGB, PSNRRGB, PSNRY

    component = {"psnr-rgb": PSNRRGB(), "psnr-y": PSNRY(4), "ms-ssim-rgb": MSSSIMRGB()}[metric]
    if kind == "ours-first":
        return lambda: metrics.compute_metric(component, x.clone(), y, "cpu")
    if kind == "ours":
        metrics.compute_metric(component, x, y, "cpu")  # the earlier cell of this image
        return lambda: metrics.compute_metric(component, x, y.clone(), "cpu")
    if metric == "ms-ssim-rgb":
        from pytorch_msssim import ms_ssim
        return lambda: ms_ssim(x[None].float(), y[None].float(), data_range=255).item()
    if metric == "psnr-rgb":
        from compressai.utils.eval_model.__main__ import psnr
        return lambda: psnr(x[None].float(), y[None].float()).item()

    def psnr_y():
        crop = (slice(None), slice(4, -4), slice(4, -4))
        diff = metrics.rgb_to_y(x[crop]) - metrics.rgb_to_y(y[crop])
        return 10 * math.log10(255**2 / float((diff**2).mean()))
    return psnr_y
