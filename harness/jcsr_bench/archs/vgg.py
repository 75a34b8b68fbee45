"""VGG19 ``conv5_4`` features (before ReLU) for ESRGAN's perceptual loss.

The architecture is torchvision's VGG19 (``features`` up to and including layer 34,
``conv5_4``); the weights are torchvision's ``vgg19-dcbb9e9d.pth``, resolved and
hash-checked by ``jcsr_bench.artifacts.weights`` in torch hub's checkpoint folder -- never through
torchvision's own downloader. Offline and missing, the weights layer raises a
``WeightsError`` naming the file, the folder and the URL.

Tests (and users with another extractor) pass their own module instead: anything mapping
float ``[B, 3, H, W]`` in [0, 1] to a feature tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from jcsr_bench.kit.errors import WeightsError

VGG19_SOURCE = {
    "url": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "sha256": "dcbb9e9d",
}
CONV5_4 = 34  # index of conv5_4 in torchvision's vgg19().features
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    """ImageNet-normalise a [0, 1] image, run VGG19 up to conv5_4 (no final ReLU)."""

    def __init__(self, features: nn.Module):
        super().__init__()
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


def vgg19_conv54(state_dict: dict | None = None) -> VGGFeatures:
    """VGG19 ``features[:35]`` with weights from ``state_dict`` or the verified file."""
    from torchvision.models.vgg import cfgs, make_layers

    if state_dict is None:
        from jcsr_bench.artifacts import weights

        path = weights.resolve(VGG19_SOURCE)
        state_dict = weights.load_checkpoint(path)
    features = make_layers(cfgs["E"], batch_norm=False)
    prefix = "features."
    wanted = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not wanted:
        raise WeightsError(
            "the VGG19 checkpoint has no 'features.*' keys; expected torchvision's "
            "vgg19-dcbb9e9d.pth"
        )
    head = nn.Sequential(*list(features.children())[: CONV5_4 + 1])
    keep = {k: v for k, v in wanted.items() if int(k.split(".")[0]) <= CONV5_4}
    missing, unexpected = head.load_state_dict(keep, strict=False)
    if missing or unexpected:
        raise WeightsError(
            f"VGG19 weights do not fit torchvision's vgg19 features: missing {missing}, "
            f"unexpected {unexpected}"
        )
    module = VGGFeatures(head).eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module
