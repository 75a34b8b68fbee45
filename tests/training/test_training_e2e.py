"""End to end: `train-sr` (CPU preset, a few steps) at two qualities, then the adaptive
SR component (and `run`) resolve the right checkpoint for each quality."""

import csv
import json
import math

import pytest
import torch

from jcsr_bench.artifacts.trained_store import checkpoint_path, sidecar_path
from jcsr_bench.artifacts.weights import load_checkpoint
from jcsr_bench.cli.main import main
from jcsr_bench.imaging.images import load_image, save_image
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.training.checkpoint import atomic_save

REGISTRY = """
sr:
  b2-tiny:
    type: esrgan
    arch: {{num_feat: 8, num_block: 1, num_grow_ch: 4}}
    adapt: {{preset: cpu, dataset: train-imgs, steps: 3, l1_steps: 3, batch: 2, patch: 32}}
datasets:
  train-imgs: {{type: folder, root: "{root}"}}
"""


@pytest.fixture()
def setup(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        small = torch.rand(1, 3, 12, 12, generator=gen)
        big = torch.nn.functional.interpolate(small, size=(64, 80), mode="bilinear")[0]
        save_image((big * 255).round().to(torch.uint8), root / f"img{i}.png")
    reg = tmp_path / "reg.yaml"
    reg.write_text(REGISTRY.format(root=root))
    return reg, root


def test_train_sr_then_adaptive_model_resolves_each_quality(setup, capsys):
    reg, root = setup
    args = ["train-sr", "--registry", str(reg), "--sr", "b2-tiny", "--codec", "jpeg",
            "--qualities", "10,50", "--dataset", "train-imgs", "--device", "cpu"]
    assert main(args) == 0
    registry = load_registry([reg])
    component = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")
    states = {}
    for quality in (10, 50):
        ckpt = checkpoint_path(component.adapt_identity, codec.identity, quality)
        meta = json.loads(sidecar_path(ckpt).read_text())
        assert meta["quality"] == quality and meta["steps"] == 3
        assert meta["codec_identity"] == codec.identity and meta["data"]["images"] == 2
        assert meta["config"]["patch"] == 32 and meta["harness_version"]
        states[quality] = load_checkpoint(ckpt)["params_ema"]
        model = component.for_codec(codec.identity, quality)
        net = model._network()
        for key, value in net.state_dict().items():
            assert torch.equal(value, states[quality][key])
        lr = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
        assert model.upscale(lr).shape == (3, 32, 32)
    # each quality trained on its own reconstructions: different weights
    assert any(not torch.equal(states[10][k], states[50][k]) for k in states[10])
    with pytest.raises(Exception, match="train-sr"):
        component.for_codec(codec.identity, 90)
    # a second `train_missing` finds both qualities present and trains nothing
    from jcsr_bench.training.adaptive import train_missing

    results = train_missing(registry, "b2-tiny", "jpeg", [10, 50], device="cpu")
    assert [r.status for r in results] == ["exists", "exists"]


def test_train_sr_refuses_instances_without_adapt(setup):
    reg, _ = setup
    assert main(["train-sr", "--registry", str(reg), "--sr", "bicubic", "--codec", "jpeg",
                 "--dataset", "train-imgs"]) == 2


RUN = ["--sr", "b2-tiny", "--codec", "jpeg", "--qualities", "10,50", "--dataset",
       "train-imgs", "--device", "cpu"]


def test_run_uses_the_checkpoint_of_each_quality(setup, tmp_path):
    reg, root = setup
    assert main(["train-sr", "--registry", str(reg), *RUN]) == 0
    registry = load_registry([reg])
    component = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")
    # Mark each quality's checkpoint: a huge output bias makes its SR output constant,
    # black for q10 and white for q50, so the scores reveal which checkpoint ran.
    for quality, bias in ((10, -10.0), (50, 10.0)):
        ckpt = checkpoint_path(component.adapt_identity, codec.identity, quality)
        state = load_checkpoint(ckpt)["params_ema"]
        state["conv_last.weight"].zero_()
        state["conv_last.bias"].fill_(bias)
        atomic_save({"params_ema": state}, ckpt)
    out = tmp_path / "out"
    assert main(["run", "--registry", str(reg), *RUN, "--output", str(out)]) == 0
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert len(rows) == 4
    for row in rows:
        hr = load_image(root / f"{row['image']}.png").double()
        level = 0.0 if row["quality"] == "10" else 255.0
        expected = 10 * math.log10(255**2 / (hr - level).pow(2).mean().item())
        assert float(row["psnr-rgb"]) == pytest.approx(expected, abs=1e-5), row  # float32 PSNR


def test_run_train_trains_missing_checkpoints_first(setup, tmp_path):
    reg, _ = setup
    out = tmp_path / "out"
    assert main(["run", "--registry", str(reg), *RUN, "--output", str(out), "--train"]) == 0
    registry = load_registry([reg])
    component = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")
    for quality in (10, 50):
        assert checkpoint_path(component.adapt_identity, codec.identity, quality).is_file()
    assert len(list(csv.DictReader((out / "results.csv").read_text().splitlines()))) == 4
