"""ESRGAN losses, discriminator and VGG19 feature extractor against hand computations."""

import math

import pytest
import torch
from torch import nn

from jcsr_bench.archs.discriminator import VGGStyleDiscriminator
from jcsr_bench.kit.errors import JcsrError, WeightsError
from jcsr_bench.training import losses


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce(x: float, target: int) -> float:  # BCE-with-logits by hand
    return softplus(-x) if target else softplus(x)


REAL = [1.5, -0.5, 0.25]
FAKE = [0.2, -1.0, 0.7]


def test_relativistic_losses_match_hand_computation():
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    mr, mf = sum(REAL) / 3, sum(FAKE) / 3
    g = 0.5 * (sum(bce(r - mf, 0) for r in REAL) / 3 + sum(bce(f - mr, 1) for f in FAKE) / 3)
    d = 0.5 * sum(bce(r - mf, 1) for r in REAL) / 3 + 0.5 * sum(bce(f - mr, 0) for f in FAKE) / 3
    assert losses.relativistic_g_loss(real, fake).item() == pytest.approx(g, rel=1e-12)
    assert losses.relativistic_d_loss(real, fake).item() == pytest.approx(d, rel=1e-12)


def test_relativistic_gradients_flow_only_where_they_should():
    real = torch.tensor(REAL, requires_grad=True)
    fake = torch.tensor(FAKE, requires_grad=True)
    losses.relativistic_g_loss(real, fake).backward()
    assert real.grad is None and fake.grad is not None  # G: real logits are constants
    real2 = torch.tensor(REAL, requires_grad=True)
    fake2 = torch.tensor(FAKE, requires_grad=True)
    losses.relativistic_d_loss(real2, fake2).backward()
    # d/dr_i of 1/2 mean BCE(r_i - mean f, 1) only (mean r is detached): -(1 - sigmoid)/6
    mf = sum(FAKE) / 3
    expected = [-(1 - 1 / (1 + math.exp(-(r - mf)))) / 6 for r in REAL]
    assert real2.grad.tolist() == pytest.approx(expected, rel=1e-5)


def test_perceptual_loss_uses_frozen_extractor_and_is_zero_on_identical_images():
    torch.manual_seed(0)
    ext = nn.Conv2d(3, 2, 3, padding=1)
    loss = losses.PerceptualLoss(ext)
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    y = torch.rand(2, 3, 8, 8)
    assert loss(y, y).item() == 0.0
    value = loss(x, y)
    expected = (ext(x) - ext(y)).abs().mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    assert x.grad is not None and all(p.grad is None for p in ext.parameters())


def test_discriminator_shapes_and_width():
    d = VGGStyleDiscriminator(num_feat=4, input_size=64)
    assert d(torch.rand(3, 3, 64, 64)).shape == (3, 1)
    assert d.classifier[0].in_features == 32 * 2 * 2
    full = VGGStyleDiscriminator()  # ESRGAN's: 64 wide, 128x128 -> 4x4x512
    assert full.classifier[0].in_features == 512 * 4 * 4
    with pytest.raises(JcsrError, match="multiple of 32"):
        VGGStyleDiscriminator(input_size=48)


def test_vgg19_conv54_matches_torchvision_layers():
    from torchvision.models.vgg import cfgs, make_layers

    from jcsr_bench.archs.vgg import vgg19_conv54

    torch.manual_seed(0)
    ref = make_layers(cfgs["E"])
    state = {f"features.{k}": v for k, v in ref.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # ignored
    ext = vgg19_conv54(state)
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = ref[:35]((x - mean) / std)  # up to conv5_4, before its ReLU
    assert isinstance(ref[34], nn.Conv2d)
    got = ext(x)
    assert torch.allclose(got, expected) and (got < 0).any()  # negative: no final ReLU


def test_vgg19_missing_offline_names_file_folder_and_url():
    from jcsr_bench.archs.vgg import vgg19_conv54

    with pytest.raises(WeightsError) as info:
        vgg19_conv54()
    text = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in text and "download.pytorch.org" in text
    assert "checkpoints" in text
