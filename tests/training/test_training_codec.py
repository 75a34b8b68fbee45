"""train-codec: the rate-distortion loss, padding, and checkpoints the codec type loads."""

import math

import pytest
import torch

from jcsr_bench.cli.main import main
from jcsr_bench.imaging.images import save_image
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.training.codec import (
    LAMBDAS,
    RateDistortionLoss,
    lambda_for,
    pad_centred,
    train_codec,
)
from jcsr_bench_plugins.codecs.compressai_codec import CompressAICodec

REGISTRY = """
codecs:
  tiny-hp: {{type: compressai, arch: bmshj2018-hyperprior, metric: mse, qualities: [1, 8],
            pretrained: false}}
datasets:
  imgs: {{type: folder, root: "{root}"}}
"""


def make_registry(tmp_path, size):
    root = tmp_path / "imgs"
    root.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        small = torch.rand(1, 3, 8, 8, generator=gen)
        big = torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear")[0]
        save_image((big * 255).round().to(torch.uint8), root / f"im{i}.png")
    reg = tmp_path / "reg.yaml"
    reg.write_text(REGISTRY.format(root=root))
    return reg, root


@pytest.fixture()
def registry(tmp_path):
    return make_registry(tmp_path, 64)


def test_lambda_table_matches_compressai():
    assert lambda_for("mse", 1) == 0.0018 and lambda_for("mse", 8) == 0.18
    assert lambda_for("ms-ssim", 3) == 8.73 and len(LAMBDAS["ms-ssim"]) == 8


def test_padding_is_centred_zeros_and_loss_ignores_it():
    x = torch.rand(2, 3, 96, 96)
    padded, box = pad_centred(x)
    assert padded.shape[-2:] == (128, 128) and box == (16, 16, 96, 96)
    assert torch.equal(padded[..., 16:112, 16:112], x) and padded[..., :16, :].abs().sum() == 0
    likelihoods = {"y": torch.full((2, 4, 8, 8), 0.5), "z": torch.full((2, 2, 2, 2), 0.25)}
    x_hat = padded.clone() + 0.1
    x_hat[..., :16, :] = 7.0  # garbage in the padding must not count
    out = RateDistortionLoss(0.01)({"x_hat": x_hat, "likelihoods": likelihoods}, x, box)
    bits = 2 * 4 * 8 * 8 * 1 + 2 * 2 * 2 * 2 * 2  # -log2(0.5) = 1, -log2(0.25) = 2
    assert out["bpp_loss"].item() == pytest.approx(bits / (2 * 96 * 96))
    assert out["mse_loss"].item() == pytest.approx(0.01, rel=1e-4)
    assert out["loss"].item() == pytest.approx(0.01 * 255**2 * 0.01 + bits / (2 * 96 * 96),
                                               rel=1e-4)


def test_two_qualities_load_round_trip_and_bpp_grows_with_lambda(registry, tmp_path):
    reg, root = registry
    reg_obj = load_registry([reg])
    # 48x48 crops: not a multiple of 64, so the padded path is exercised. 20 steps each.
    written = train_codec(reg_obj, "tiny-hp", "imgs", [1, 8], patch=48, steps=20, batch=3,
                          device="cpu", output=tmp_path / "runs", source="hr",
                          channels=(8, 8), lr=1e-3, progress=False, log=lambda *a: None)
    assert sorted(written) == [1, 8]
    codec = CompressAICodec("bmshj2018-hyperprior", "mse", [1, 8],
                            weights={q: str(p) for q, p in written.items()})
    from jcsr_bench.imaging.images import load_image

    image = load_image(root / "im0.png")
    sizes = {}
    for q in (1, 8):
        data = codec.encode(image, q)
        decoded = codec.decode(data)
        assert torch.equal(decoded, codec.reconstruct(image, q))
        sizes[q] = len(data)
    assert sizes[8] > sizes[1]  # higher lambda -> more bits, after 20 steps


def test_train_codec_command_full_size_one_step(tmp_path, capsys):
    reg, _ = make_registry(tmp_path, 256)  # 96 and below: crops of the x4 LR (64x64) images
    out = tmp_path / "runs"
    code = main(["train-codec", "--registry", str(reg), "--codec", "tiny-hp", "--dataset",
                 "imgs", "--qualities", "1", "--patch", "64", "--steps", "1", "--batch", "1",
                 "--device", "cpu", "--output", str(out)])
    assert code == 0
    ckpt = out / "bmshj2018-hyperprior-mse-lr64-q1.pth.tar"
    codec = CompressAICodec("bmshj2018-hyperprior", "mse", [1], weights=str(ckpt))
    assert codec.model(1).g_a[0].weight.shape[0] == 128  # zoo channels for q1
    printed = capsys.readouterr().out
    assert "weights:" in printed and "x4 LR versions" in printed
    assert math.isfinite(codec.encode(torch.zeros(3, 16, 16, dtype=torch.uint8), 1).__len__())
