"""The adaptive-SR training loop: stages, exact resume, NaN stop, Ctrl-C, pairs, config."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from jcsr_bench.archs.rrdbnet import RRDBNet
from jcsr_bench.imaging.lr import make_lr
from jcsr_bench.kit.errors import RegistryError
from jcsr_bench.training import checkpoint, losses, sr
from jcsr_bench.training.config import needs_vgg, resolve_config
from jcsr_bench.training.pairs import from_images, sample_batch

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def tiny_generator(seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(**TINY)


def extractor() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2))


def images(n=2, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # smooth-ish content so that super-resolution is learnable
    base = torch.rand(n, 3, size // 8, size // 8, generator=gen)
    up = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear")
    return [(u * 255).round().to(torch.uint8) for u in up]


def pairs(n=2, size=64):
    hr = images(n, size)
    return from_images(hr, [make_lr(h, 4) for h in hr], 4)


def config(**overrides):
    # the cpu preset's size with the full ESRGAN loss (perceptual term included)
    base = {"preset": "cpu", "batch": 2, "patch": 32, "steps": 4, "l1_steps": 1,
            "checkpoint_every": 2, "log_every": 1, "seed": 7, "perceptual_weight": 1.0,
            "pixel_weight": 1e-2, "milestones": [2]}
    return resolve_config({**base, **overrides})


def test_config_presets_overrides_and_errors():
    full = resolve_config({"init": "esrgan-b1"})
    assert full["preset"] == "esrgan" and full["init"] == "esrgan-b1"
    assert (full["gan_weight"], full["pixel_weight"], full["perceptual_weight"]) == (5e-3, 1e-2, 1)
    assert full["betas"] == [0.9, 0.99] and full["lr"] == 1e-4 and full["patch"] == 128
    cpu = resolve_config({"preset": "cpu", "steps": 10}, steps=5, batch=None)
    assert cpu["steps"] == 5 and cpu["batch"] == 4
    assert not needs_vgg(resolve_config({"preset": "cpu", "steps": 3, "l1_steps": 3}))
    with pytest.raises(RegistryError, match="gan_weigth.*gan_weight"):
        resolve_config({"gan_weigth": 1})
    with pytest.raises(RegistryError, match="multiple of the scale"):
        resolve_config({"patch": 30})


def test_sample_batch_is_aligned_and_deterministic():
    hr = images(1, 64)[0]
    lr = make_lr(hr, 4)
    p = from_images([hr], [lr], 4)
    a_lr, a_hr = sample_batch(p, 3, 32, seed=1, step=5, augment=True)
    b_lr, b_hr = sample_batch(p, 3, 32, seed=1, step=5, augment=True)
    assert torch.equal(a_lr, b_lr) and torch.equal(a_hr, b_hr)
    assert a_lr.shape == (3, 3, 8, 8) and a_hr.shape == (3, 3, 32, 32)
    c_lr, _ = sample_batch(p, 3, 32, seed=1, step=6, augment=True)
    assert not torch.equal(a_lr, c_lr)
    # alignment: downsampling each HR crop gives (up to border effects) its LR crop
    for lo, hi in zip(*sample_batch(p, 4, 32, seed=2, step=0, augment=True)):
        down = make_lr((hi * 255).round().to(torch.uint8), 4).float() / 255
        assert (down[:, 2:-2, 2:-2] - lo[:, 2:-2, 2:-2]).abs().max() < 0.02


def test_losses_finite_and_l1_stage_reduces_loss_on_fixed_batch():
    p = pairs(1, 32)  # one 32x32 image, patch 32, no augmentation -> the same batch
    cfg = config(steps=5, l1_steps=5, l1_lr=2e-3, augment=False, batch=1)
    lr_b, hr_b = sample_batch(p, 1, 32, cfg["seed"], 0, False)
    net = tiny_generator()
    with torch.no_grad():
        before = losses.pixel_l1(net(lr_b), hr_b).item()
    result = sr.fit(net, p, cfg, progress=False)
    with torch.no_grad():
        after = losses.pixel_l1(net(lr_b), hr_b).item()
    assert result.status == "done" and result.step == 5
    assert after < before * 0.9
    gan = sr.fit(tiny_generator(), pairs(), config(), feature_extractor=extractor(),
                 progress=False)
    assert set(gan.losses) == {"l_pix", "l_percep", "l_g_gan", "l_g_total", "l_d"}
    assert all(np.isfinite(v) for v in gan.losses.values())


def test_resume_equals_uninterrupted_run(tmp_path):
    p = pairs()
    full = sr.fit(tiny_generator(), p, config(steps=4), state_path=tmp_path / "a.pth",
                  feature_extractor=extractor(), progress=False)
    sr.fit(tiny_generator(), p, config(steps=2), state_path=tmp_path / "b.pth",
           log_path=tmp_path / "b.jsonl", feature_extractor=extractor(), progress=False)
    assert checkpoint.load(tmp_path / "b.pth")["step"] == 2
    resumed = sr.fit(tiny_generator(seed=99), p, config(steps=4), state_path=tmp_path / "b.pth",
                     log_path=tmp_path / "b.jsonl", resume=True,
                     feature_extractor=extractor(), progress=False)
    assert resumed.step == 4 and resumed.steps_run == 2
    for key, value in full.ema_state.items():
        assert torch.equal(value, resumed.ema_state[key]), key
    a, b = checkpoint.load(tmp_path / "a.pth"), checkpoint.load(tmp_path / "b.pth")
    for name in ("generator", "discriminator"):
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)
    log = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert [r["stage"] for r in log] == ["l1", "gan", "gan", "gan"]


def test_resume_refuses_a_changed_config(tmp_path):
    p = pairs()
    sr.fit(tiny_generator(), p, config(steps=2, l1_steps=4), state_path=tmp_path / "s.pth",
           progress=False)
    with pytest.raises(Exception, match="config changed.*batch"):
        sr.fit(tiny_generator(), p, config(steps=4, l1_steps=4, batch=3),
               state_path=tmp_path / "s.pth", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_l1 = losses.pixel_l1

    def flaky(output, target):
        calls["n"] += 1
        value = real_l1(output, target)
        return value * float("nan") if calls["n"] == 4 else value

    monkeypatch.setattr(losses, "pixel_l1", flaky)
    state = tmp_path / "q.state.pth"
    with pytest.raises(sr.TrainingDiverged, match=r"step 4.*last good training state.*q\.state"):
        sr.fit(tiny_generator(), pairs(), config(steps=6, l1_steps=6), state_path=state,
               progress=False)
    saved = checkpoint.load(state)
    assert saved["step"] == 2
    assert all(torch.isfinite(v).all() for v in saved["generator"].values())


def test_ctrl_c_saves_and_resume_finishes(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_l1 = losses.pixel_l1

    def interrupting(output, target):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real_l1(output, target)

    monkeypatch.setattr(losses, "pixel_l1", interrupting)
    state = tmp_path / "s.pth"
    cfg = config(steps=5, l1_steps=5, checkpoint_every=100)
    first = sr.fit(tiny_generator(), pairs(), cfg, state_path=state, progress=False)
    assert first.status == "interrupted" and first.step == 2
    assert checkpoint.load(state)["step"] == 2
    monkeypatch.setattr(losses, "pixel_l1", real_l1)
    second = sr.fit(tiny_generator(), pairs(), cfg, state_path=state, resume=True,
                    progress=False)
    reference = sr.fit(tiny_generator(), pairs(), cfg, progress=False)
    assert second.status == "done"
    for key, value in reference.ema_state.items():
        assert torch.equal(value, second.ema_state[key]), key


def test_resume_an_l1_only_state_into_the_gan_stage(tmp_path):
    p = pairs()
    state = tmp_path / "s.pth"
    sr.fit(tiny_generator(), p, config(steps=2, l1_steps=2), state_path=state, progress=False)
    assert "discriminator" not in checkpoint.load(state)
    more = sr.fit(tiny_generator(), p, config(steps=3, l1_steps=2), state_path=state,
                  resume=True, feature_extractor=extractor(), progress=False)
    assert more.step == 3 and "l_d" in more.losses


class StubCodec:
    identity = "stub-codec:v1"
    qualities = [1, 2]
    reconstruct_exact = True  # declared equal to decode(encode()): pairs may use it

    def __init__(self):
        self.calls = []

    def reconstruct(self, image, quality):
        self.calls.append((tuple(image.shape), quality))
        return (image.int() // (4 * quality) * (4 * quality)).to(torch.uint8)

    def encode(self, image, quality):  # pragma: no cover - reconstruct is preferred
        raise AssertionError("whole-image reconstruct must be used")


class StubDataset:
    identity = "stub-dataset:v1"

    def __init__(self):
        self.iterations = 0
        self.images = [im[:, :42, :41] for im in images(2, 48)]  # mod-crop -> 40x40

    def __len__(self):
        return 2

    def __iter__(self):
        self.iterations += 1
        for i, im in enumerate(self.images):
            yield f"im{i}", im


def test_prepare_pairs_codes_whole_images_once_and_caches():
    from jcsr_bench.training.pairs import prepare_pairs

    data, codec = StubDataset(), StubCodec()
    sets = prepare_pairs(data, codec=codec, qualities=[1, 2], progress=False)
    # whole LR images (mod-cropped 40x40 -> 10x10), one call per image and quality
    assert sorted(codec.calls) == [((3, 10, 10), 1), ((3, 10, 10), 1), ((3, 10, 10), 2),
                                   ((3, 10, 10), 2)]
    hr = data.images[0][:, :40, :40]
    lr = make_lr(hr, 4)
    assert np.array_equal(sets[2].hr[0], hr.numpy())
    assert np.array_equal(sets[None].lr[0], lr.numpy())
    assert np.array_equal(sets[2].lr[0], codec.reconstruct(lr, 2).numpy())
    assert sets[1].identity != sets[2].identity != sets[None].identity
    again = prepare_pairs(data, codec=StubCodec(), qualities=[1, 2], progress=False)
    assert data.iterations == 1  # complete cache: the dataset is not read again
    assert np.array_equal(again[2].lr[1], sets[2].lr[1])
