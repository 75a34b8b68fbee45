"""Baseline 2's models are keyed by what they were trained from, not by names.

A user registry overrides `esrgan-b1` with a tiny local RRDBNet and defines `b2-tiny`,
fine-tuned from it on a `folder` dataset of two small PNGs. Changing the init weights,
one training image or a hyper-parameter must give a new trained-weights store key (the
models become untrained, `--train` trains them, only their cells are recomputed, the old
checkpoints stay); an unchanged setup reuses everything.
"""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

import jcsr_bench.training.sr as training_sr
from jcsr_bench.archs.rrdbnet import RRDBNet
from jcsr_bench.artifacts.trained_store import sidecar_path, stored_models
from jcsr_bench.artifacts.weights import load_checkpoint
from jcsr_bench.cli.main import main
from jcsr_bench.imaging.images import load_image, save_image
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.results.store import load_rows
from jcsr_bench.run import engine
from jcsr_bench.training import TRAINING_CODE_VERSION
from jcsr_bench.training.checkpoint import atomic_save

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
REGISTRY = """
sr:
  esrgan-b1: {{type: esrgan, weights: "{b1}"}}
  b2-tiny:
    type: esrgan
    adapt: {{preset: cpu, init: esrgan-b1, dataset: train-imgs, steps: 2, l1_steps: 2,
             batch: 2, patch: 32, images: null}}
datasets:
  train-imgs: {{type: folder, root: "{train}"}}
  test-imgs: {{type: folder, root: "{test}"}}
"""
RUN = ["--dataset", "test-imgs", "--codec", "jpeg", "--qualities", "10,50", "--sr",
       "bicubic,b2-tiny", "--device", "cpu"]


def _image(seed: int, size: tuple[int, int]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 6, 6, generator=gen)
    big = torch.nn.functional.interpolate(small, size=size, mode="bilinear")[0]
    return (big * 255).round().to(torch.uint8)


def _save_b1(path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(RRDBNet(**TINY).state_dict(), path)


class Setup:
    def __init__(self, root):
        self.root = root
        self.train, self.test = root / "train", root / "test"
        self.train.mkdir()
        self.test.mkdir()
        for i in range(2):
            save_image(_image(i, (64, 80)), self.train / f"t{i}.png")
            save_image(_image(10 + i, (32, 32)), self.test / f"e{i}.png")
        self.b1 = root / "b1.pth"
        _save_b1(self.b1, seed=1)
        self.registry_file = root / "user.yaml"
        self.write_registry(self.b1)
        self.out = root / "out"

    def write_registry(self, b1) -> None:
        self.registry_file.write_text(REGISTRY.format(b1=b1, train=self.train, test=self.test))

    def run(self, *, train: bool) -> engine.RunSummary:
        return engine.run(registry=load_registry([self.registry_file]),
                          datasets=["test-imgs"], codecs=["jpeg"], srs=["bicubic", "b2-tiny"],
                          qualities=[10, 50], device="cpu", output=self.out, train=train,
                          progress=False, stream=io.StringIO())

    def cell_keys(self) -> dict[tuple, str]:
        return {(r["sr"], r["image"], r["quality"]): r["cell_key"]
                for r in load_rows(self.out / "results.sqlite")}

    def snapshot(self) -> dict:
        """Every stored model's bytes, by path."""
        return {m.checkpoint: m.checkpoint.read_bytes() for m in stored_models()}


@pytest.fixture()
def setup(tmp_path):
    return Setup(tmp_path)


@pytest.fixture()
def fits(monkeypatch):
    """Count the training runs (one per (codec, quality) model trained)."""
    calls = []
    real = training_sr.fit

    def counting(*args, **kwargs):
        calls.append(kwargs.get("resume"))
        return real(*args, **kwargs)

    monkeypatch.setattr(training_sr, "fit", counting)
    return calls


def _first_run(setup, fits) -> tuple[dict, dict]:
    summary = setup.run(train=True)
    assert summary.exit_code == 0 and summary.computed == 8, summary.failed
    assert len(fits) == 2
    fits.clear()
    return setup.cell_keys(), setup.snapshot()


def _assert_untrained_then_retrained(setup, fits, keys, models, capsys):
    """`run` reports every quality untrained (nothing computed); `--train` trains them,
    recomputes only b2-tiny's cells and keeps the old checkpoints as they were."""
    code = main(["run", "--registry", str(setup.registry_file), *RUN,
                 "--output", str(setup.out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "sr b2-tiny after codec jpeg, quality 10,50" in err
    assert "`jcsr-bench train-sr --sr b2-tiny --codec jpeg --qualities 10,50`" in err
    assert not fits and setup.cell_keys() == keys  # nothing trained or computed

    summary = setup.run(train=True)
    assert summary.exit_code == 0, summary.failed
    assert len(fits) == 2  # both qualities trained again
    assert summary.computed == 4 and summary.cached == 4  # only b2-tiny's cells
    new_keys = setup.cell_keys()
    for (sr, image, quality), key in keys.items():
        assert (new_keys[sr, image, quality] == key) == (sr == "bicubic")
    after = setup.snapshot()
    assert len(after) == 4
    for path, data in models.items():  # the old models stay, untouched
        assert after[path] == data


@pytest.mark.slow
def test_changing_the_init_weights_retrains_b2(setup, fits, capsys):
    keys, models = _first_run(setup, fits)
    other = setup.root / "b1-other.pth"
    _save_b1(other, seed=2)
    setup.write_registry(other)  # esrgan-b1 now names other weights
    _assert_untrained_then_retrained(setup, fits, keys, models, capsys)
    records = [m.meta["trained_from"]["init"] for m in stored_models()]
    assert {r["name"] for r in records} == {"esrgan-b1"}
    assert len({r["identity"] for r in records}) == 2  # same name, two contents


@pytest.mark.slow
def test_changing_one_training_image_retrains_b2(setup, fits, capsys):
    keys, models = _first_run(setup, fits)
    save_image(_image(99, (64, 80)), setup.train / "t1.png")
    _assert_untrained_then_retrained(setup, fits, keys, models, capsys)


def test_unchanged_setup_reuses_everything(setup, fits):
    keys, models = _first_run(setup, fits)
    summary = setup.run(train=True)
    assert summary.exit_code == 0
    assert not fits and summary.computed == 0 and summary.cached == 8
    assert setup.cell_keys() == keys and setup.snapshot() == models
    # `train-sr` with the registry's settings finds the models and keeps them
    _train(setup)
    assert not fits and setup.snapshot() == models
    assert main(["train-sr", "--registry", str(setup.registry_file), "--sr", "b2-tiny",
                 "--codec", "jpeg", "--qualities", "10", "--device", "cpu", "--retrain"]) == 0
    assert fits == [False] and len(stored_models()) == 2  # from scratch, same key


def _mark(checkpoint, bias: float) -> None:
    """Make a model's output constant (0 or 255), so scores reveal which one ran."""
    state = load_checkpoint(checkpoint)["params_ema"]
    state["conv_last.weight"].zero_()
    state["conv_last.bias"].fill_(bias)
    atomic_save({"params_ema": state}, checkpoint)


def test_cli_overrides_get_their_own_key_and_run_uses_the_registrys(setup, fits, capsys):
    train = ["train-sr", "--registry", str(setup.registry_file), "--sr", "b2-tiny",
             "--codec", "jpeg", "--qualities", "10,50", "--device", "cpu"]
    assert main([*train, "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "note: steps 1 differ from sr.b2-tiny's adapt section" in out
    overridden = stored_models()
    assert [m.meta["steps"] for m in overridden] == [1, 1]
    # run does not take the --steps 1 models for the registry's configuration
    assert main(["run", "--registry", str(setup.registry_file), *RUN,
                 "--output", str(setup.out)]) == 2
    assert "train-sr --sr b2-tiny" in capsys.readouterr().err

    assert main(train) == 0
    entries = stored_models()
    assert len(entries) == 4 and len({m.meta["adapt_identity"] for m in entries}) == 2
    default = [m for m in entries if m.meta["steps"] == 2]
    assert len(default) == 2 and {m.meta["config"]["steps"] for m in default} == {2}
    for model in default:
        _mark(model.checkpoint, -10.0)  # black: the registry configuration's
    for model in overridden:
        _mark(model.checkpoint, 10.0)  # white: --steps 1
    fits.clear()
    summary = setup.run(train=False)
    assert summary.exit_code == 0 and not fits
    for row in load_rows(setup.out / "results.sqlite"):
        if row["sr"] != "b2-tiny":
            continue
        hr = load_image(setup.test / f"{row['image']}.png").double()
        black = 10 * math.log10(255**2 / hr.pow(2).mean().item())
        assert row["values"]["psnr-rgb"] == pytest.approx(black, abs=1e-5)


def _train(setup) -> None:
    assert main(["train-sr", "--registry", str(setup.registry_file), "--sr", "b2-tiny",
                 "--codec", "jpeg", "--qualities", "10,50", "--device", "cpu"]) == 0


def test_sidecar_records_what_the_model_was_trained_from(setup, fits):
    _train(setup)
    assert fits == [True, True]  # an unfinished state under the same key would continue
    registry = load_registry([setup.registry_file])
    b2 = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")
    meta = json.loads(sidecar_path(b2.checkpoint_path(codec.identity, 10)).read_text())
    source = meta["trained_from"]
    assert meta["adapt_identity"] == source["identity"] == b2.adapt_identity
    assert meta["codec_identity"] == codec.identity and meta["quality"] == 10
    assert source["init"]["name"] == "esrgan-b1"
    assert source["init"]["identity"] == registry.build("sr", "esrgan-b1").weights_identity
    from jcsr_bench.artifacts.hashing import sha256_file

    assert source["init"]["identity"] == f"sha256:{sha256_file(setup.b1)}"
    assert source["dataset"] == {"name": "train-imgs",
                                 "identity": registry.build("datasets", "train-imgs").identity}
    assert source["training_code_version"] == TRAINING_CODE_VERSION
    assert meta["config"]["steps"] == 2 and meta["config"]["kernel"] == "matlab"
    assert meta["config"]["scale"] == 4 and meta["config"]["init"] == "esrgan-b1"


def _identity(registry, **overrides) -> str:
    return registry.build("sr", "b2-tiny").training_identity(**overrides).identity


def test_identity_covers_hyper_parameters_not_bookkeeping_or_names(setup, monkeypatch):
    registry = load_registry([setup.registry_file])
    base = _identity(registry)
    assert _identity(registry, steps=2) == base  # an override equal to the registry's
    for change in ({"steps": 3}, {"batch": 4}, {"patch": 64}, {"seed": 1}):
        assert _identity(registry, **change) != base, change
    edits = {"kernel: pil": True, "scale: 2": True, "lr: 0.001": True,
             "log_every: 1": False, "checkpoint_every: 7": False}
    for edit, changes in edits.items():
        setup.registry_file.write_text(setup.registry_file.read_text().replace(
            "images: null", f"images: null, {edit}"))
        assert (_identity(load_registry([setup.registry_file])) != base) == changes, edit
        setup.write_registry(setup.b1)
    # names do not matter, contents do: the same dataset under another name
    text = setup.registry_file.read_text() + f'  renamed: {{type: folder, root: "{setup.train}"}}\n'
    setup.registry_file.write_text(text)
    assert _identity(load_registry([setup.registry_file]), dataset="renamed") == base
    import jcsr_bench.training as training

    monkeypatch.setattr("jcsr_bench.training.trained_from.TRAINING_CODE_VERSION",
                        training.TRAINING_CODE_VERSION + 1)
    assert _identity(registry) != base


def test_init_identity_is_cheap_and_needs_no_weight_file(setup, monkeypatch):
    """The published init is identified by its pinned hash (file absent, offline)."""
    import jcsr_bench.artifacts.weights as weights

    def no_loading(*args, **kwargs):
        raise AssertionError("weights were loaded to compute an identity")

    monkeypatch.setattr(weights, "load_checkpoint", no_loading)
    registry = load_registry([setup.registry_file])
    assert registry.build("sr", "esrgan-b1").weights_identity.startswith("sha256:")
    shipped_b1 = load_registry().build("sr", "esrgan-b1")
    assert shipped_b1.missing_weights()  # not downloaded
    assert shipped_b1.weights_identity == "sha256:ff704c30"
    assert _identity(registry).startswith("esrgan-adapt:")


def test_from_scratch_models_are_keyed_by_seed_and_architecture(setup):
    def scratch(arch: str) -> object:
        setup.registry_file.write_text(setup.registry_file.read_text().replace(
            "sr:\n", f"sr:\n  scratch: {{type: esrgan, arch: {arch}, adapt: "
            "{preset: cpu, dataset: train-imgs}}\n", 1))
        component = load_registry([setup.registry_file]).build("sr", "scratch")
        setup.write_registry(setup.b1)
        return component

    tiny = scratch("{num_feat: 8, num_block: 1, num_grow_ch: 4}")
    key = tiny.training_identity()
    assert key.init["random"] == "seeded (seed 0)"
    assert key.network["arch"] == {**RRDBNet().arch, **TINY}
    assert tiny.training_identity(seed=3).init["identity"] != key.init["identity"]
    wider = scratch("{num_feat: 16, num_block: 1, num_grow_ch: 4}")
    assert wider.adapt_identity != tiny.adapt_identity


def test_list_trained_shows_the_store(setup, capsys):
    assert main(["list", "sr", "--trained"]) == 0
    assert "is empty" in capsys.readouterr().out
    _train(setup)
    capsys.readouterr()
    assert main(["list", "sr", "--trained"]) == 0
    out = capsys.readouterr().out
    assert out.count("b2-tiny") == 2 and "esrgan-b1 (sha256:" in out
    assert "train-imgs (dataset:" in out and "2 model(s)" in out
    assert main(["list", "sr", "--trained", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(e["quality"] for e in listed) == [10, 50]
    assert all(e["trained_from"]["dataset"]["name"] == "train-imgs" for e in listed)
    assert main(["list", "codecs", "--trained"]) == 2
    # a model stored before keys were content identities is listed as such
    legacy = stored_models()[0]
    meta = dict(legacy.meta)
    del meta["trained_from"]
    sidecar_path(legacy.checkpoint).write_text(json.dumps(meta))
    assert main(["list", "sr", "--trained"]) == 0
    out = capsys.readouterr().out
    assert "esrgan-b1 (content not recorded)" in out
    assert "train-imgs (content not recorded)" in out


def test_a_missing_init_file_is_one_clear_error(setup, capsys):
    setup.write_registry(setup.root / "nowhere.pth")
    code = main(["run", "--registry", str(setup.registry_file), *RUN,
                 "--output", str(setup.out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "sr b2-tiny (training: starting weights esrgan-b1): weight file not found" in err
    assert str(setup.root / "nowhere.pth") in err


def test_train_sr_overrides_say_and_save_the_entry_that_selects_them(setup, fits, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(setup.root)  # ./jcsr-bench.yaml: the project-local registry
    train = ["train-sr", "--registry", str(setup.registry_file), "--sr", "b2-tiny",
             "--codec", "jpeg", "--qualities", "10,50", "--device", "cpu", "--steps", "1"]
    assert main(train) == 0
    out = capsys.readouterr().out
    assert "`run --sr b2-tiny` does not use these models. This registry entry selects " \
        "exactly them" in out
    assert "  b2-tiny-steps1:\n    type: esrgan\n" in out
    assert "then: jcsr-bench run --sr b2-tiny-steps1 --codec jpeg --qualities 10,50" in out
    assert main([*train, "--save-as", "b2-one-step"]) == 0  # trained already: kept
    assert "wrote sr.b2-one-step to jcsr-bench.yaml" in capsys.readouterr().out
    for model in stored_models():
        _mark(model.checkpoint, 10.0)  # white: the --steps 1 models
    registry = load_registry([setup.registry_file])
    assert registry.instances("sr")["b2-one-step"].where.startswith(
        str(setup.root / "jcsr-bench.yaml"))
    assert registry.build("sr", "b2-one-step").adapt_identity == \
        stored_models()[0].meta["adapt_identity"]
    run = ["run", "--registry", str(setup.registry_file), "--dataset", "test-imgs",
           "--codec", "jpeg", "--qualities", "10,50", "--sr", "b2-one-step", "--device",
           "cpu", "--output", str(setup.out)]
    assert main(run) == 0  # the saved entry evaluates exactly those models
    rows = load_rows(setup.out / "results.sqlite")
    assert len(rows) == 4 and all(r["values"]["psnr-rgb"] < 10 for r in rows)  # white
    capsys.readouterr()
    assert main(["list", "sr", "--trained", "--registry", str(setup.registry_file)]) == 0
    listing = capsys.readouterr().out
    assert "run --sr" in listing and listing.count("b2-one-step") == 2
    # a name already taken is refused, without training
    assert main([*train, "--save-as", "b2-tiny"]) == 2
    assert "sr 'b2-tiny' already exists" in capsys.readouterr().err


def test_evaluating_an_adaptive_model_on_its_training_images_warns_naming_them(setup):
    from jcsr_bench.run.plan import TrainingImagesWarning

    (setup.test / "t0.png").write_bytes((setup.train / "t0.png").read_bytes())  # shared
    with pytest.warns(TrainingImagesWarning) as caught:
        summary = engine.run(registry=load_registry([setup.registry_file]),
                             datasets=["test-imgs"], codecs=["jpeg"], srs=["b2-tiny"],
                             qualities=[10], device="cpu", output=setup.out, dry_run=True,
                             progress=False, stream=io.StringIO())
    assert summary.dry_run
    (warning,) = [w for w in caught if issubclass(w.category, TrainingImagesWarning)]
    assert str(warning.message).startswith(
        "sr b2-tiny is evaluated on 1 image(s) it was trained on (training dataset "
        "train-imgs): test-imgs/t0; its scores there are not a held-out measure")


def test_the_shipped_cpu_model_trains_on_images_samples_holds(tmp_path, monkeypatch):
    """The docs' warning: samples-train and samples share images (samples-test does not)."""
    from jcsr_bench.plugin.manager import PluginManager
    from jcsr_bench.run.plan import Planner

    registry = load_registry([], manager=PluginManager(entry_points=False))
    train = Planner._content_hashes(registry.build("datasets", "samples-train"))
    assert train & Planner._content_hashes(registry.build("datasets", "samples"))
    assert not train & Planner._content_hashes(registry.build("datasets", "samples-test"))
