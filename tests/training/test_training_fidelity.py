"""Issue 20 / 15.3: what training saves (EMA), what it trains on (real decodes), LR
milestones, the cuDNN flag, and the CPU instance offline."""

import json

import numpy as np
import pytest
import torch
from test_training_sr import config, images, pairs, tiny_generator

from jcsr_bench.artifacts.trained_store import checkpoint_path, sidecar_path
from jcsr_bench.cli.main import main
from jcsr_bench.imaging.images import save_image
from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.kit.errors import RegistryError
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.training import TRAINING_CODE_VERSION, sr
from jcsr_bench.training.config import ema_decay, resolve_config, unreached_milestones
from jcsr_bench.training.needs import missing_weights
from jcsr_bench.training.pairs import prepare_pairs


class StubDataset:
    identity = "stub-dataset:fidelity"

    def __init__(self, image):
        self.image = image

    def __len__(self):
        return 1

    def __iter__(self):
        yield "im0", self.image


@pytest.fixture()
def setup_registry(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    save_image(images(1, 64)[0], root / "img0.png")
    reg = tmp_path / "reg.yaml"
    reg.write_text(f"""
sr:
  b2-tiny:
    type: esrgan
    arch: {{num_feat: 8, num_block: 1, num_grow_ch: 4}}
    adapt: {{preset: cpu, dataset: train-imgs, steps: 3, l1_steps: 1, batch: 2, patch: 32,
             milestones: [2]}}
datasets:
  train-imgs: {{type: folder, root: "{root}"}}
""")
    return reg, root


def _psnr(net, p):
    """Mean PSNR (dB) of ``net`` over the whole images of a PairSet."""
    values = []
    with torch.no_grad():
        for lo, hi in zip(p.lr, p.hr):
            out = net(torch.from_numpy(np.asarray(lo)).float().div(255).unsqueeze(0))
            sr_img = out[0].clamp(0, 1).mul(255).round().to(torch.uint8)
            values.append(psnr_rgb(torch.from_numpy(np.asarray(hi)), sr_img))
    return sum(values) / len(values)


# -- (1) EMA -----------------------------------------------------------------------------


def test_from_scratch_saved_ema_is_as_good_as_the_raw_generator():
    p = pairs(2, 64)
    cfg = config(steps=40, l1_steps=40, l1_lr=2e-3, ema=0.99, batch=2, augment=False)
    raw = tiny_generator()
    start = _psnr(raw, p)
    result = sr.fit(raw, p, cfg, progress=False)
    saved = tiny_generator(seed=5)
    saved.load_state_dict(result.ema_state)
    raw_psnr, saved_psnr = _psnr(raw, p), _psnr(saved, p)
    assert raw_psnr > start + 3  # it did learn
    # A constant 0.99 from random init keeps 0.99^40 = 67 % of the random weights
    # (several dB worse); with the warm-up the average trails the last few steps only.
    assert saved_psnr > raw_psnr - 0.3, (saved_psnr, raw_psnr)


def test_ema_decay_ramps_from_scratch_and_is_constant_when_fine_tuning():
    scratch = resolve_config({"preset": "cpu", "ema": 0.99})
    assert ema_decay(scratch, 0) == pytest.approx(0.1)
    assert ema_decay(scratch, 90) == pytest.approx(91 / 100)
    assert ema_decay(scratch, 10_000) == 0.99  # capped at the configured decay
    assert ema_decay(resolve_config({"preset": "cpu"}), 199) == 0.9  # the shipped preset
    tuned = resolve_config({"init": "esrgan-b1"})
    assert [ema_decay(tuned, s) for s in (0, 1, 399_999)] == [0.999] * 3


def test_fine_tuning_ema_is_basicsr_constant_decay_from_the_init_weights():
    """model_ema(decay): ema = decay * ema + (1 - decay) * w after every step, ema_0 = w_0."""
    p = pairs()
    cfg = config(steps=2, l1_steps=2, ema=0.5, init="esrgan-b1")
    weights = [tiny_generator().state_dict()]
    for steps in (1, 2):
        net = tiny_generator()
        sr.fit(net, p, config(steps=steps, l1_steps=2, ema=0.5, init="esrgan-b1"),
               progress=False)
        weights.append(net.state_dict())
    result = sr.fit(tiny_generator(), p, cfg, progress=False)
    for key, value in result.ema_state.items():
        if value.is_floating_point():
            expected = 0.5 * (0.5 * weights[0][key] + 0.5 * weights[1][key]) \
                + 0.5 * weights[2][key]
            assert torch.allclose(value, expected, atol=1e-6), key


# -- (2) pairs through the real decode ---------------------------------------------------


@pytest.mark.parametrize("arch", ["mbt2018", "cheng2020-anchor"])
def test_autoregressive_codec_pairs_are_real_decodes(arch):
    from jcsr_bench_plugins.codecs.compressai_codec import CompressAICodec

    codec = CompressAICodec(arch, pretrained=False, qualities=[1])
    data = StubDataset(images(1, 112)[0][:, :96, :112])  # LR 24 x 28
    sets = prepare_pairs(data, codec=codec, qualities=[1], progress=False)
    lr = torch.from_numpy(np.asarray(sets[None].lr[0]).copy())
    decoded = codec.decode(codec.encode(lr, 1))
    assert np.array_equal(np.asarray(sets[1].lr[0]), decoded.numpy())
    # the fast path would have been wrong here: this is what the test guards against
    assert not torch.equal(codec.reconstruct(lr, 1), decoded)
    assert sets[1].info["decoded_by"] == "decode" and not codec.reconstruct_exact


@pytest.mark.parametrize("arch", ["bmshj2018-factorized", "bmshj2018-hyperprior",
                                  "mbt2018-mean"])
def test_exact_reconstruct_claim_holds_and_pairs_use_it(arch, monkeypatch):
    from jcsr_bench_plugins.codecs.compressai_codec import CompressAICodec

    codec = CompressAICodec(arch, pretrained=False, qualities=[1])
    assert codec.reconstruct_exact
    for seed in range(2):
        lr = images(1, 28, seed=seed)[0][:, :24, :]
        assert torch.equal(codec.reconstruct(lr, 1), codec.decode(codec.encode(lr, 1)))
    monkeypatch.setattr(codec, "encode", lambda *a: pytest.fail("reconstruct is exact"))
    sets = prepare_pairs(StubDataset(images(1, 96)[0]), codec=codec, qualities=[1],
                         progress=False)
    assert sets[1].info["decoded_by"] == "reconstruct"


def test_pairs_made_by_reconstruct_and_by_decode_never_share_a_cache_entry():
    class Inexact:
        identity = "inexact:v1"
        qualities = [1]
        reconstruct_exact = False

        def reconstruct(self, image, quality):
            return image // 2

        def encode(self, image, quality):
            return image.numpy().tobytes() + bytes([image.shape[1], image.shape[2]])

        def decode(self, data):
            h, w = data[-2], data[-1]
            return torch.frombuffer(bytearray(data[:-2]), dtype=torch.uint8).view(3, h, w)

    data = StubDataset(images(1, 32)[0])
    codec = Inexact()
    by_decode = prepare_pairs(data, codec=codec, qualities=[1], progress=False)
    assert np.array_equal(np.asarray(by_decode[1].lr[0]), np.asarray(by_decode[None].lr[0]))
    codec.reconstruct_exact = True
    by_reconstruct = prepare_pairs(data, codec=codec, qualities=[1], progress=False)
    assert by_reconstruct[1].identity != by_decode[1].identity
    assert np.array_equal(np.asarray(by_reconstruct[1].lr[0]),
                          np.asarray(by_decode[None].lr[0]) // 2)


# -- (3) milestones ------------------------------------------------------------------------


def test_milestones_beyond_the_gan_stage_are_reported():
    message = unreached_milestones(resolve_config({"preset": "cpu", "milestones": [60, 150]}))
    assert message == ("adapt.milestones [150] never fire: the learning-rate schedulers "
                       "count only GAN-stage steps, and this GAN stage has 100 (steps 200 - "
                       "l1_steps 100); give milestones below 100 (or [] for none).")
    assert unreached_milestones(resolve_config({"preset": "cpu"})) is None
    assert unreached_milestones(resolve_config({})) is None  # ESRGAN: 400k GAN steps
    # an all-L1 run has no schedule to check
    assert unreached_milestones(resolve_config({"preset": "cpu", "l1_steps": 200})) is None
    with pytest.raises(RegistryError, match="milestones: expected increasing positive"):
        resolve_config({"milestones": [100, 50]})
    with pytest.raises(RegistryError, match="milestones"):
        resolve_config({"milestones": [0]})


def test_the_cpu_preset_milestone_halves_the_learning_rate(tmp_path):
    cfg = config(steps=5, l1_steps=1, milestones=[2], log_every=1)
    sr.fit(tiny_generator(), pairs(), cfg, log_path=tmp_path / "log.jsonl",
           feature_extractor=torch.nn.Identity(), progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in log] == [2e-4, 1e-4, 1e-4, 5e-5, 5e-5]


def test_train_sr_warns_naming_the_milestone_and_the_stage(setup_registry):
    reg, _ = setup_registry
    lines = []
    sr.train_sr(load_registry([reg]), "b2-tiny", "jpeg", qualities=[50], steps=3,
                device="cpu", progress=False, log=lines.append)
    warning = [line for line in lines if line.startswith("warning:")]
    assert warning == ["warning: sr.b2-tiny: adapt.milestones [2] never fire: the "
                       "learning-rate schedulers count only GAN-stage steps, and this GAN "
                       "stage has 2 (steps 3 - l1_steps 1); give milestones below 2 (or [] "
                       "for none)."]


# -- (4) cuDNN autotuning is scoped ------------------------------------------------------


@pytest.mark.parametrize("fail", [False, True])
def test_fit_turns_cudnn_benchmark_on_and_restores_it(fail, monkeypatch):
    seen = []
    net = tiny_generator()
    net.register_forward_hook(lambda *_: seen.append(torch.backends.cudnn.benchmark))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    if fail:
        monkeypatch.setattr(sr.losses, "pixel_l1", lambda *a: torch.tensor(float("nan")))
    try:
        sr.fit(net, pairs(), config(steps=2, l1_steps=2), progress=False)
    except sr.TrainingDiverged:
        assert fail
    assert seen and all(seen)  # on during training
    assert torch.backends.cudnn.benchmark is False  # the caller's value afterwards


# -- issue 15.3: the CPU instance offline, and what a VGG19 preset needs ------------------


def test_shipped_cpu_instance_needs_no_download():
    registry = load_registry()
    adapt = registry.resolve("sr", "esrgan-b2-cpu").params["adapt"]
    cfg = resolve_config(adapt)
    assert missing_weights(registry, cfg) == []
    assert cfg["perceptual_weight"] == 0 and cfg["gan_weight"] == 5e-3  # RaGAN, no VGG19
    assert (cfg["steps"], cfg["l1_steps"], cfg["init"]) == (200, 100, None)
    assert unreached_milestones(cfg) is None
    net = sr.initial_generator(registry, registry.resolve("sr", "esrgan-b2-cpu"), cfg)
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == 0.76


@pytest.mark.slow
def test_train_sr_esrgan_b2_cpu_offline_end_to_end(capsys):
    # tiny overrides: 100 L1 steps (the preset's) and 2 GAN steps (discriminator, no VGG19)
    args = ["train-sr", "--sr", "esrgan-b2-cpu", "--codec", "jpeg", "--qualities", "30",
            "--steps", "102", "--batch", "2", "--patch", "32", "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    registry = load_registry()
    component = registry.build("sr", "esrgan-b2-cpu")
    key = component.training_identity(steps=102, batch=2, patch=32)  # the overrides' key
    ckpt = checkpoint_path(key.identity, registry.build("codecs", "jpeg").identity, 30)
    meta = json.loads(sidecar_path(ckpt).read_text())
    assert meta["steps"] == 102 and meta["training_code_version"] == TRAINING_CODE_VERSION
    assert set(meta["final_losses"]) == {"l_pix", "l_g_gan", "l_g_total", "l_d"}
    assert meta["data"]["images"] == 4 and meta["data"]["decoded_by"] == "decode"


def test_a_vgg19_preset_offline_fails_up_front_naming_every_missing_file(capsys, tmp_path):
    from jcsr_bench.kit.paths import cache_dir, torch_hub_checkpoints

    args = ["train-sr", "--sr", "esrgan-b2", "--codec", "bmshj", "--qualities", "1",
            "--dataset", "samples-train", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    folder = str(torch_hub_checkpoints())
    assert "cannot train offline" in err and "Traceback" not in err
    assert ("  - VGG19 for the perceptual loss: weight file vgg19-dcbb9e9d.pth is not in "
            f"{folder}: download it from "
            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth") in err
    assert "adapt.perceptual_weight 0 (now 1.0; the cpu preset has none)" in err
    assert "  - starting weights esrgan-b1: " in err
    assert "ESRGAN_SRx4_DF2KOST_official-ff704c30" in err
    assert "  - codec bmshj: bmshj2018-hyperprior (mse) quality 1: weight file" in err
    assert not (cache_dir() / "training").exists()  # nothing read or computed before
