"""Tiled inference (jcsr_bench.imaging.tiling): seamless stitching, precision guard, 8-bit I/O."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jcsr_bench.archs.rrdbnet import RRDBNet
from jcsr_bench.imaging.tiling import run_guarded, tiled_forward, to_float, to_uint8, upscale_image
from jcsr_bench.kit.errors import DataError, JcsrError
from jcsr_bench.testing import sample_image


def nearest_x4(x: torch.Tensor) -> torch.Tensor:
    """A pointwise 'network': any stitching error shows up exactly."""
    return x.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)


def blur_then_upscale(radius: int):
    """A network whose context is exactly ``radius`` LR pixels (box blurs, zero padding)."""
    kernel = torch.ones(3, 1, 3, 3) / 9

    def net(x: torch.Tensor) -> torch.Tensor:
        for _ in range(radius):
            x = F.conv2d(x, kernel, padding=1, groups=3)
        return nearest_x4(x)

    return net


def lively_rrdbnet(seed: int = 0) -> RRDBNet:
    """A small random RRDBNet whose output spans a useful part of [0, 1].

    A default-initialised net outputs nearly constant values, where any tiling error
    would vanish in the 8-bit rounding; here the output has std ~0.15 around 0.5.
    """
    torch.manual_seed(seed)
    net = RRDBNet(num_feat=8, num_block=2, num_grow_ch=8).eval()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0.2)
            m.weight.data.mul_(0.5)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        probe = net(sample_image(32, 32, seed=1).float()[None] / 255)
        net.conv_last.weight.mul_(0.15 / probe.std())
        net.conv_last.bias.fill_(0.5)
    return net.to(memory_format=torch.channels_last)  # as the esrgan component runs it


@pytest.mark.parametrize("tile,overlap", [(7, 0), (16, 3), (25, 5), (100, 2)])
def test_stitching_covers_every_pixel_exactly(tile, overlap):
    x = torch.rand(2, 3, 37, 50)
    expected = nearest_x4(x)
    assert torch.equal(tiled_forward(nearest_x4, x, 4, tile, overlap), expected)


@pytest.mark.parametrize("radius", [1, 3])
def test_overlap_at_least_the_context_gives_the_untiled_result(radius):
    x = torch.rand(1, 3, 40, 33)
    net = blur_then_upscale(radius)
    full = net(x)
    tiled = tiled_forward(net, x, 4, tile=10, overlap=radius)
    torch.testing.assert_close(tiled, full, atol=1e-6, rtol=0)
    too_small = tiled_forward(net, x, 4, tile=10, overlap=radius - 1)
    assert (too_small - full).abs().max() > 1e-3  # the check above can fail


def test_rrdbnet_tiled_equals_untiled_on_256px():
    """Acceptance: 256x256 input, tile 64, overlap 16 -> within 1/255 of untiled."""
    net = lively_rrdbnet()
    image = sample_image(256, 256, seed=3)
    x = to_float(image, "cpu")
    with torch.inference_mode():
        full = net(x)
        tiled = tiled_forward(net, x, 4, tile=64, overlap=16)
        crop = x[:, :, :128, :128]  # without overlap the seams do show (cheaper crop)
        seams = tiled_forward(net, crop, 4, tile=64, overlap=0) - net(crop)
    assert full.std() > 0.05  # the output carries real signal, not one grey level
    assert (tiled - full).abs().max() <= 1 / 255
    assert (to_uint8(tiled).int() - to_uint8(full).int()).abs().max() <= 1
    assert seams.abs().max() > 1 / 255


def test_small_image_and_tile_zero_run_once():
    calls = []

    def net(x):
        calls.append(tuple(x.shape))
        return nearest_x4(x)

    x = torch.rand(1, 3, 20, 30)
    tiled_forward(net, x, 4, tile=0)
    tiled_forward(net, x, 4, tile=64)
    assert calls == [(1, 3, 20, 30)] * 2


def test_wrong_output_size_is_reported():
    with pytest.raises(JcsrError, match="expected"):
        tiled_forward(lambda x: x, torch.rand(1, 3, 20, 20), 4, tile=8)


def test_precision_and_tiling_are_validated():
    with pytest.raises(JcsrError, match="precision"):
        run_guarded(nearest_x4, torch.rand(1, 3, 4, 4), "fp8")
    with pytest.raises(JcsrError, match="tile"):
        tiled_forward(nearest_x4, torch.rand(1, 3, 4, 4), 4, tile=-1)


def test_bf16_runs_close_to_fp32():
    net = lively_rrdbnet()
    x = torch.rand(1, 3, 12, 12)
    with torch.inference_mode():
        ref = run_guarded(net, x, "fp32")
        low = run_guarded(net, x, "bf16")
    assert low.dtype == torch.float32
    assert 0 < (low - ref).abs().max() < 0.05


def test_non_finite_reduced_precision_output_is_redone_in_fp32():
    def net(x):
        out = nearest_x4(x)
        return out * float("nan") if torch.is_autocast_enabled("cpu") else out

    x = torch.rand(1, 3, 6, 6)
    with pytest.warns(RuntimeWarning, match="not finite"):
        out = run_guarded(net, x, "bf16")
    assert torch.equal(out, nearest_x4(x))


def test_uint8_conversion_clamps_and_rounds():
    out = torch.tensor([-0.2, 0.0, 0.49 / 255, 0.51 / 255, 254.6 / 255, 1.0, 1.7])
    got = to_uint8(out.view(1, 1, 1, -1).expand(1, 3, 1, -1))
    assert got.dtype == torch.uint8 and got.shape == (3, 1, 7)
    assert got[0, 0].tolist() == [0, 0, 0, 1, 255, 255, 255]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_to_uint8_refuses_non_finite_output(bad):
    out = torch.zeros(1, 3, 2, 2)
    out[0, 1, 1, 1] = bad  # NaN became a black pixel scored as a result
    with pytest.raises(DataError, match="net-x: the SR output holds NaN or infinite"):
        to_uint8(out, "net-x")


def test_upscale_image_round_trip_and_input_checks():
    image = sample_image(9, 11)
    out = upscale_image(nearest_x4, image, 4, tile=4, overlap=1)
    assert torch.equal(out, nearest_x4(image[None].float())[0].to(torch.uint8))
    with pytest.raises(DataError, match="uint8"):
        upscale_image(nearest_x4, image.float(), 4)
    with pytest.raises(DataError, match=r"\[3, H, W\]"):
        upscale_image(nearest_x4, image[:2], 4)
