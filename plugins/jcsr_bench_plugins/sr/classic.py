"""Classical SR baselines: Pillow bicubic / Lanczos interpolation, and no upscaling."""

from __future__ import annotations

import numpy as np
import PIL
import torch
from PIL import Image

from jcsr_bench.imaging.images import check_image, from_numpy, to_pil
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.identity import make_identity


class _PillowSR:
    """Upscale an 8-bit RGB image with one of Pillow's resampling filters."""

    kind = ""
    resample: Image.Resampling

    def __init__(self, scale: int = 4) -> None:
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise JcsrError(f"{self.kind}: scale must be a positive integer, got {scale!r}")
        self.scale = scale
        # Pillow's version is part of the identity: its filters define the output.
        self.identity = make_identity(self.kind, scale=scale, pillow=PIL.__version__)

    def upscale(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 ``[3, H, W]`` -> uint8 ``[3, scale*H, scale*W]``."""
        h, w = check_image(image, "SR input").shape[1:]
        out = to_pil(image).resize((w * self.scale, h * self.scale), self.resample)
        return from_numpy(np.asarray(out))

    def to(self, device: object) -> _PillowSR:
        """Pillow runs on the CPU whatever the device."""
        return self


class BicubicSR(_PillowSR):
    """Pillow bicubic (Keys, a = -0.5): the classical SR anchor."""

    kind = "bicubic"
    resample = Image.Resampling.BICUBIC


class LanczosSR(_PillowSR):
    """Pillow Lanczos (a = 3)."""

    kind = "lanczos"
    resample = Image.Resampling.LANCZOS


class NoSR:
    """No upscaling: the decoded LR image is scored against the LR input (codec-only)."""

    scale = 1
    identity = "none"

    def upscale(self, image: torch.Tensor) -> torch.Tensor:
        """The image itself, unchanged."""
        check_image(image, "SR input")
        return image

    def to(self, device: object) -> NoSR:
        return self
