"""ESRGAN's losses: pixel L1, perceptual L1 on VGG features, relativistic average GAN.

Relativistic average (RaGAN) with BCE-with-logits, ``C`` = discriminator logits:

- generator:      ``1/2 [BCE(C(real) - mean C(fake), 0) + BCE(C(fake) - mean C(real), 1)]``
  (real logits detached: only the generator is updated);
- discriminator:  ``1/2 BCE(C(real) - mean C(fake), 1) + 1/2 BCE(C(fake) - mean C(real), 0)``
  (the fake images are detached by the caller; each term's mean is detached, as BasicSR
  computes it, so each term's gradient flows through its own logits only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def relativistic_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's RaGAN loss (weight lambda is applied by the caller)."""
    real = real_logits.detach()
    return 0.5 * (_bce(real - fake_logits.mean(), 0.0) + _bce(fake_logits - real.mean(), 1.0))


def relativistic_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's RaGAN loss; ``fake_logits`` must come from detached images."""
    return 0.5 * _bce(real_logits - fake_logits.detach().mean(), 1.0) + 0.5 * _bce(
        fake_logits - real_logits.detach().mean(), 0.0
    )


def pixel_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (the PSNR-oriented stage's loss and the GAN stage's eta term)."""
    return F.l1_loss(output, target)


class PerceptualLoss(nn.Module):
    """L1 between feature maps of a frozen extractor (VGG19 conv5_4 before ReLU).

    The extractor takes float images in [0, 1]; ImageNet normalisation is its own job
    (see ``jcsr_bench.archs.vgg``). Target features carry no gradient.
    """

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor.eval()
        for param in self.extractor.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualLoss:  # the extractor stays in eval
        super().train(mode)
        self.extractor.eval()
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.extractor(target)
        return F.l1_loss(self.extractor(output), target_features)
