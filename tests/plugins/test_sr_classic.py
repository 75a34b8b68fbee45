"""Classical SR types: Pillow bicubic / Lanczos, and no upscaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.kit.errors import DataError, JcsrError
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.testing import check_sr_model, sample_image
from jcsr_bench_plugins.sr.classic import BicubicSR, LanczosSR, NoSR


@pytest.mark.parametrize(
    "cls,resample", [(BicubicSR, Image.Resampling.BICUBIC), (LanczosSR, Image.Resampling.LANCZOS)]
)
@pytest.mark.parametrize("scale", [4, 2])
def test_pillow_sr_equals_pillow_resize_per_channel(cls, resample, scale):
    image = sample_image(13, 17)
    out = cls(scale=scale).upscale(image)
    assert out.dtype == torch.uint8 and out.shape == (3, 13 * scale, 17 * scale)
    for c in range(3):  # the reference: each channel resized alone, as an 8-bit "L" image
        plane = Image.fromarray(image[c].numpy()).resize((17 * scale, 13 * scale), resample)
        assert np.array_equal(out[c].numpy(), np.asarray(plane)), c


def test_bicubic_and_lanczos_differ_and_identities_are_distinct():
    image = sample_image(16, 16)
    assert not torch.equal(BicubicSR().upscale(image), LanczosSR().upscale(image))
    ids = {BicubicSR().identity, LanczosSR().identity, BicubicSR(scale=2).identity, "none"}
    assert len(ids) == 4
    assert BicubicSR().identity == BicubicSR(scale=4).identity


def test_constant_image_stays_constant():
    image = torch.full((3, 8, 8), 77, dtype=torch.uint8)
    assert torch.all(BicubicSR().upscale(image) == 77)
    assert torch.all(LanczosSR().upscale(image) == 77)


def test_no_sr_returns_the_image_unchanged():
    image = sample_image(9, 11)
    model = NoSR()
    assert model.scale == 1
    assert torch.equal(model.upscale(image), image)


@pytest.mark.parametrize("model", [BicubicSR(), LanczosSR(), NoSR()], ids=type)
def test_conformance(model):
    check_sr_model(model)
    assert model.to("cpu") is model


def test_bad_input_and_scale_are_reported():
    with pytest.raises(DataError, match="uint8"):
        BicubicSR().upscale(sample_image(8, 8).float())
    with pytest.raises(DataError, match=r"\[3, H, W\]"):
        NoSR().upscale(torch.zeros(1, 8, 8, dtype=torch.uint8))
    with pytest.raises(JcsrError, match="scale"):
        LanczosSR(scale=0)


def test_registry_instances():
    registry = load_registry()
    assert isinstance(registry.build("sr", "bicubic"), BicubicSR)
    assert isinstance(registry.build("sr", "lanczos"), LanczosSR)
    assert isinstance(registry.build("sr", "none"), NoSR)
