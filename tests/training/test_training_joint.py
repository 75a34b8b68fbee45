"""Baseline 3 (joint decoding): the codec's synthesis and the SR network fine-tuned
together from the latent; same payload bytes as the codec; keyed by both starts."""

import io
import json

import pytest
import torch

from jcsr_bench.artifacts.trained_store import TrainedWeightsMissing, sidecar_path
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.results.store import load_rows
from jcsr_bench.run.engine import run
from jcsr_bench.training import joint
from jcsr_bench.training.adaptive import train_adaptive

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
REGISTRY = """
codecs:
  tiny: {{type: compressai, arch: bmshj2018-hyperprior, qualities: [1, 2],
          weights: {{"1": "{q1}", "2": "{q2}"}}}}
sr:
  b1: {{type: esrgan, arch: {tiny}}}
  b2: {{type: esrgan, arch: {tiny}, adapt: {{init: b1, preset: cpu, steps: 2, l1_steps: 2,
        batch: 2, patch: 32, images: 1, dataset: samples-train}}}}
  b3: {{type: esrgan, arch: {tiny}, adapt: {{joint: synthesis, init: b2, preset: cpu,
        steps: 3, l1_steps: 1, batch: 2, patch: 64, images: 1, dataset: samples-train,
        checkpoint_every: 2, log_every: 1}}}}
"""


@pytest.fixture
def registry(tmp_path):
    from compressai.zoo.image import model_architectures

    paths = {}
    for q in (1, 2):
        torch.manual_seed(q)
        net = model_architectures["bmshj2018-hyperprior"](8, 12)
        paths[q] = tmp_path / f"q{q}.pth"
        torch.save(net.state_dict(), paths[q])
    reg = tmp_path / "reg.yaml"
    reg.write_text(REGISTRY.format(q1=paths[1], q2=paths[2], tiny=json.dumps(TINY)))
    return load_registry([reg])


@pytest.mark.slow
def test_b3_trains_from_the_latent_and_is_keyed_by_its_start(registry):
    logs = []
    (result,) = train_adaptive(registry, "b3", "tiny", None, [1], device="cpu",
                               progress=False, log=logs.append)
    assert result.status == "done" and result.step == 3
    assert any("b2 has no model for this codec at q1; SR starts from b1" in str(m)
               for m in logs)
    meta = json.loads(sidecar_path(result.checkpoint).read_text())
    assert meta["start"]["from"] == "b2" and meta["config"]["augment"] is False
    b3, codec = registry.build("sr", "b3"), registry.build("codecs", "tiny")
    model = b3.for_codec(codec.identity, 1)
    assert model.consumes_latent and model.scale == 4
    # the synthesis was trained: its weights moved away from the codec's
    stored = torch.load(result.checkpoint, weights_only=True)["synthesis"]
    original = codec.synthesis_module(1).state_dict()
    assert any(not torch.equal(stored[k], original[k]) for k in original)
    image = torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8)
    out = model.upscale_latent(codec.decode_latent(codec.encode(image, 1)), codec)
    assert out.dtype == torch.uint8 and out.shape == (3, 160, 224)
    # B2 trained now: B3 starts from it, so the old B3 model is not the one asked for
    train_adaptive(registry, "b2", "tiny", None, [1], device="cpu", progress=False,
                   log=logs.append)
    with pytest.raises(TrainedWeightsMissing):
        b3.for_codec(codec.identity, 1)
    logs.clear()
    (again,) = train_adaptive(registry, "b3", "tiny", None, [1], device="cpu",
                              progress=False, log=logs.append)
    assert again.checkpoint != result.checkpoint
    assert any("SR starts from b2's model for this codec" in str(m) for m in logs)


@pytest.mark.slow
def test_b3_cells_have_the_codecs_payload_bytes_and_jpeg_is_refused(registry, tmp_path):
    dry = io.StringIO()
    run(registry=registry, datasets=["samples-test"], codecs=["tiny", "jpeg"],
        srs=["b2", "b3"], qualities=None, limit=1, output=tmp_path / "dry", dry_run=True,
        stream=dry, progress=False, device="cpu")
    text = dry.getvalue()
    assert "  combination jpeg+b3: " in text
    assert "train-sr --sr b3 --codec tiny" in text  # the dry run lists what B3 needs
    assert "b2 has no model for codec tiny at q1" in text  # said: B3 would start from b1
    summary = run(registry=registry, datasets=["samples-test"], codecs=["tiny"],
                  srs=["b2", "b3"], limit=1, output=tmp_path / "out", train=True,
                  stream=io.StringIO(), progress=False, device="cpu")
    assert summary.exit_code == 0, summary.failed
    rows = {(r["quality"], r["sr"]): r for r in load_rows(summary.db_path)}
    assert len(rows) == 4
    for q in (1, 2):
        b2, b3 = rows[(q, "b2")], rows[(q, "b3")]
        assert b3["status"] == "ok" and b3["digests"]["payload"] == b2["digests"]["payload"]
        assert b3["values"]["bpp"] == b2["values"]["bpp"]
        assert b3["digests"]["output"] != b2["digests"]["output"]


def test_latent_crops_are_aligned_with_the_hr_image():
    hr = torch.arange(3 * 256 * 320, dtype=torch.float32).remainder(251).to(torch.uint8)
    hr = hr.view(3, 256, 320).numpy()
    y = torch.arange(4 * 6 * 7, dtype=torch.float32).view(4, 6, 7).numpy()
    # LR 64x80 padded to 96x112 (latent 6x7): offset (16, 16)
    data = joint.LatentPairs(["a"], [y], [hr], [(16, 16)], [(64, 80)], 16, 4, "id")
    ys, hrs = joint.sample_latent_batch(data, 3, 64, seed=0, step=0)
    assert ys.shape == (3, 4, 3, 3) and hrs.shape == (3, 3, 64, 64)
    for k in range(3):
        i = int(ys[k, 0, 1, 1]) // 7  # the crop's centre latent pixel (row, col)
        j = int(ys[k, 0, 1, 1]) % 7
        r, c = 4 * (16 * i - 16), 4 * (16 * j - 16)
        assert torch.equal(hrs[k], torch.from_numpy(hr[:, r:r + 64, c:c + 64]).float() / 255)
    with pytest.raises(Exception, match="multiple of scale x latent stride = 64"):
        joint.sample_latent_batch(data, 1, 96, seed=0, step=0)


def test_joint_config_errors_and_ray_refusal(registry):
    from jcsr_bench.kit.errors import JcsrError, RegistryError
    from jcsr_bench.training.config import resolve_config

    assert resolve_config({"joint": "synthesis", "preset": "cpu"})["augment"] is False
    assert "joint" not in resolve_config({"preset": "cpu"})  # B2's keys are unchanged
    with pytest.raises(RegistryError, match="adapt.joint: expected one of \\['synthesis'\\]"):
        resolve_config({"joint": "analysis"})
    with pytest.raises(RegistryError, match="adapt.augment: joint decoding trains without"):
        resolve_config({"joint": "synthesis", "augment": True})
    with pytest.raises(JcsrError, match="--executor local only"):
        train_adaptive(registry, "b3", "tiny", None, [1], device="cpu", executor="ray",
                       progress=False, log=lambda *a: None)
    with pytest.raises(JcsrError, match="codec 'jpeg' offers no latent"):
        train_adaptive(registry, "b3", "jpeg", None, [10], device="cpu", progress=False,
                       log=lambda *a: None)
    # B2's trainer never trains a B3 instance as if it were a B2
    from jcsr_bench.training.sr import train_sr

    with pytest.raises(JcsrError, match="adapt.joint.*train_adaptive"):
        train_sr(registry, "b3", "tiny", None, [1], device="cpu", progress=False,
                 log=lambda *a: None)
