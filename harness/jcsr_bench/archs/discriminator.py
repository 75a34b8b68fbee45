"""ESRGAN's VGG-style discriminator (BasicSR ``VGGStyleDiscriminator``), configurable width.

Five stages of (3x3 conv + BN + LeakyReLU, 4x4 stride-2 conv + BN + LeakyReLU), widths
``w, 2w, 4w, 8w, 8w``, then ``Linear(8w * (s/32)^2, 100)`` + LeakyReLU + ``Linear(100, 1)``.
ESRGAN uses ``w = 64`` and 128x128 inputs (4x4 final maps); any input size that is a
multiple of 32 works here (the patch size of small presets).
"""

from __future__ import annotations

import torch
from torch import nn

from jcsr_bench.kit.errors import JcsrError


class VGGStyleDiscriminator(nn.Module):
    """Image -> one realness logit per image (float [0, 1] NCHW input)."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128):
        super().__init__()
        if input_size % 32 or input_size < 32:
            raise JcsrError(
                f"the discriminator needs a patch size that is a multiple of 32 (five "
                f"stride-2 stages), got {input_size}; change adapt.patch / --patch"
            )
        widths = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8]
        layers: list[nn.Module] = []
        in_ch = num_in_ch
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(in_ch, width, 3, 1, 1, bias=i == 0)]
            if i:
                layers += [nn.BatchNorm2d(width, affine=True)]
            layers += [nn.LeakyReLU(0.2, inplace=True),
                       nn.Conv2d(width, width, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width, affine=True),
                       nn.LeakyReLU(0.2, inplace=True)]
            in_ch = width
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.classifier = nn.Sequential(
            nn.Linear(widths[-1] * side * side, 100),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(100, 1),
        )
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise JcsrError(
                f"discriminator built for {self.input_size}x{self.input_size} inputs, got "
                f"{tuple(x.shape[-2:])}"
            )
        return self.classifier(self.features(x).flatten(1))
