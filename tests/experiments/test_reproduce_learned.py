"""`reproduce --codec bmshj-samples`: a learned codec trained first, then the B1/B2 protocol."""

import json

import pytest
import torch

from jcsr_bench.experiments.learned_codec import CodecRecipe, codec_key, train_learned_codec
from jcsr_bench.experiments.reproduce import BUDGETS, reproduce
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.paths import trained_dir
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import load_registry

RECIPE = CodecRecipe(steps=6, batch=2, patch=64, lr=1e-2, channels=(8, 12), images=1,
                     checkpoint_every=2)


def registry():
    return load_registry(manager=PluginManager(entry_points=False))


def run_toy(tmp_path):
    return reproduce(registry(), codec="bmshj-samples", budget="toy", device="cpu",
                     output=tmp_path / "out", progress=False, log=lambda *a: None)


@pytest.mark.slow
def test_toy_trains_the_codec_on_the_training_split_then_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))
    first = run_toy(tmp_path)
    text = first.table.read_text()
    recipe = BUDGETS["toy"].codec_training
    for needle in ("# Baseline 2 over baseline 1: `bmshj-samples`, toy budget",
                   "--codec bmshj-samples --budget toy --seeds 1",
                   "- Environment fingerprint: CPU ", "B2 vs B1", "Seeds: 0",
                   "qualities [1, 8]", "## The learned codec `bmshj-samples`",
                   "bmshj2018-hyperprior (mse; N=8, M=12)", "(q1: 0.0018, q8: 0.18)",
                   f"{recipe.steps} steps each", "`samples-train` images (first 1)",
                   "codec seed 0", "this run trained 2 of its 2 models",
                   "bmshj-samples vs jpeg (codec only)", "| jpeg ", "q20: ", "q60: ",
                   "`samples-test`", "Time taken", "B3 vs B2", "B3 vs B1",
                   "Per seed (its B1, B2, B3 training and evaluation): seed 0 ",
                   "so one seed from scratch (seed 0) took ",
                   "bmshj-samples vs jpeg (both + bicubic x4, at HR)",
                   "Baseline 3 (joint decoding): `bmshj-samples`'s synthesis transform",
                   "2 steps per quality (L1 only, batch 2, HR patch 64, latent crops"):
        assert needle in text, needle
    # every B3 and B2 cell carries the codec's payload, byte for byte: same bits
    from jcsr_bench.kit.paths import cache_dir
    from jcsr_bench.results.store import DB_NAME, load_rows

    rows = load_rows(cache_dir() / "reproduce" / "bmshj-samples-toy" / "run" / DB_NAME)
    payloads = {}
    for row in rows:
        kind = "B3" if row["sr"].startswith("repro-b3") else "other"
        payloads.setdefault((row["image"], row["quality"], kind), row["digests"]["payload"])
    assert any(kind == "B3" for _, _, kind in payloads)
    # the evaluation scores only the metrics the table and plots use (besides rate, time)
    scored = {k for row in rows for k in row["values"]}
    assert {"psnr-rgb", "ms-ssim-rgb", "bpp"} <= scored and "lpips" not in scored
    for (image, quality, _kind), digest in payloads.items():
        assert digest == payloads[(image, quality, "other")]
    b3 = [c for c in first.comparisons if c.test == "B3"]
    assert [c.anchor for c in b3] == ["B2", "B1"]
    for comparison in b3:
        (values,) = comparison.per_seed
        assert set(values) == {"BD-Rate PSNR (%)", "BD-PSNR (dB)", "BD-Rate MS-SSIM (%)",
                               "BD-MS-SSIM (dB)"}
    # The codec models are in the trained-weights store, trained on samples-train only.
    sidecars = sorted((trained_dir() / "codecs").glob("*/*-q*.json"))
    assert [json.loads(p.read_text())["quality"] for p in sidecars] == [1, 8]
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["data"]["dataset_name"] == "samples-train"
        assert meta["steps"] == recipe.steps and meta["config"]["seed"] == 0
    stamps = {p: p.stat().st_mtime_ns for p in sidecars}
    # The next run re-uses the codec (and every SR model and cell): same numbers.
    again = run_toy(tmp_path)
    text = again.table.read_text()
    assert "this run trained 0 of its 2 models" in text
    assert "not from-scratch times" in text and "one seed from scratch" not in text
    assert "training 0 of the 5 models" in text  # B1, B2 and B3 at two qualities
    assert {p: p.stat().st_mtime_ns for p in sidecars} == stamps
    assert [c.per_seed for c in again.comparisons] == [c.per_seed for c in first.comparisons]


def test_store_key_holds_seed_recipe_and_training_images(tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))
    reg = registry()
    key = codec_key(reg, "bmshj", RECIPE, "samples-train", [1])
    assert key.startswith("codec-train:")
    # Independent qualities: the ladder is no part of the key (q1 is q1 in any ladder).
    assert key == codec_key(reg, "bmshj", RECIPE, "samples-train", [1, 8])
    others = {codec_key(reg, "bmshj", replace(RECIPE, seed=1), "samples-train", [1]),
              codec_key(reg, "bmshj", replace(RECIPE, steps=7), "samples-train", [1]),
              codec_key(reg, "bmshj", replace(RECIPE, images=2), "samples-train", [1]),
              codec_key(reg, "bmshj", replace(RECIPE, warm_start=True), "samples-train",
                        [1]),
              codec_key(reg, "bmshj", RECIPE, "samples-test", [1])}
    assert key not in others and len(others) == 5
    # Warm-started qualities depend on those before them: the ladder is in the key.
    warm = replace(RECIPE, warm_start=True)
    assert (codec_key(reg, "bmshj", warm, "samples-train", [1, 3])
            != codec_key(reg, "bmshj", warm, "samples-train", [1, 8]))


class StopAfter:
    """Stands in for the Ctrl-C handler: 'pressed' after ``n`` steps."""

    def __init__(self, n):
        self.n, self.checks = n, 0

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def requested(self):
        self.checks += 1
        return self.checks >= self.n


def train(tmp_path, cache, monkeypatch, stop=None):
    import jcsr_bench.training.loop as training_loop

    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / cache))
    if stop is not None:
        monkeypatch.setattr(training_loop, "StopOnSigint", stop)
    return train_learned_codec(registry(), "bmshj-samples", RECIPE, "samples-train", [1],
                               device="cpu", progress=False, log=lambda *a: None)


def test_ctrl_c_keeps_the_state_and_the_next_run_resumes_it(
        tmp_path, monkeypatch):
    whole = train(tmp_path, "whole", monkeypatch)
    reference = torch.load(whole.weights[1], weights_only=True)["state_dict"]

    with pytest.raises(JcsrError, match="interrupted.*run the same command again"):
        train(tmp_path, "split", monkeypatch, stop=StopAfter(3))
    (state_file,) = (trained_dir() / "codecs").glob("*/*-q1.state.pth")
    assert torch.load(state_file, weights_only=False)["step"] == 3
    monkeypatch.undo()
    resumed = train(tmp_path, "split", monkeypatch)
    assert resumed.trained_here == 1 and resumed.key == whole.key
    state = torch.load(resumed.weights[1], weights_only=True)["state_dict"]
    assert state.keys() == reference.keys()
    # Resumed to the same weights within float rounding (a 1-ulp difference shows up in
    # the entropy bottleneck: the optimiser's reloaded state rounds differently).
    worst = max(float((state[k].float() - reference[k].float()).abs().max()) for k in reference)
    assert worst < 1e-5


def test_ctrl_c_in_b1_stops_with_the_resume_advice_before_b2(tmp_path, monkeypatch):
    """An interrupted B1 stops the run at once (B2 would start from missing weights)."""
    import jcsr_bench.training.sr as training
    from jcsr_bench.experiments.reproduce import _train_models
    from jcsr_bench.training.sr import TrainResult

    calls = []

    def fake_train_sr(registry, sr, codec, dataset, qualities, **kw):
        calls.append(sr)
        return [TrainResult(6, "interrupted", tmp_path / "q6.pth", tmp_path / "q6.json")]

    monkeypatch.setattr(training, "train_sr", fake_train_sr)
    with pytest.raises(JcsrError, match=r"interrupted \(.*q6.pth\); run the same command "
                       "again to resume it"):
        _train_models(registry(), BUDGETS["toy"], "jpeg", [20], [0], tmp_path, "cpu", False,
                      lambda *a: None)
    assert len(calls) == 1 and calls[0].startswith("repro-b1-train-")


def test_a_budget_without_a_codec_recipe_says_so(tmp_path, monkeypatch):
    from dataclasses import replace

    import jcsr_bench.experiments.reproduce as repro

    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(repro.BUDGETS, "toy", replace(BUDGETS["toy"], codec_training=None))
    with pytest.raises(JcsrError, match="the toy budget has no recipe to train bmshj-samples"):
        run_toy(tmp_path)


def test_warm_start_trains_each_quality_from_the_previous_ones_final_network(
        tmp_path, monkeypatch):
    from dataclasses import replace

    import jcsr_bench.training.codec as codec_training

    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))
    starts, real = [], codec_training.train_codec

    def spy(*args, **kw):
        starts.append((list(args[3]), kw["warm_start"]))
        return real(*args, **kw)

    monkeypatch.setattr(codec_training, "train_codec", spy)
    recipe = replace(RECIPE, steps=2, warm_start=True)
    trained = train_learned_codec(registry(), "bmshj-samples", recipe, "samples-train",
                                  [1, 3, 8], device="cpu", progress=False,
                                  log=lambda *a: None)
    q1, q3 = (str(trained.weights[q]).replace(".pth.tar", ".state.pth") for q in (1, 3))
    assert [(q, None if w is None else str(w)) for q, w in starts] == [
        ([1], None), ([3], q1), ([8], q3)]
    # train_codec's warm start: one step at a negligible learning rate stays at the
    # starting network -- q1's final one, not the seeded random initialisation.
    from pathlib import Path

    ended = torch.load(q1, weights_only=True)["net"]["g_a.0.weight"]
    for warm, near in ((Path(q1), True), (None, False)):
        out = tmp_path / f"direct-{near}"
        codec_training.train_codec(
            registry(), "bmshj", "samples-train", [3], patch=64, steps=1, batch=2,
            device="cpu", output=out, seed=0, source="lr", channels=(8, 12), lr=1e-9,
            images=1, warm_start=warm, progress=False, log=lambda *a: None)
        (state,) = out.glob("*-q3.state.pth")
        began = torch.load(state, weights_only=True)["net"]["g_a.0.weight"]
        assert ((began - ended).abs().max() < 1e-6) == near


SEEDS = 3  # of the committed small-budget table


def test_committed_table_states_the_setting_it_ran_in():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    table = (root / "leaderboards" / "reproduce-bmshj-samples-small" / "table.md").read_text()
    recipe = BUDGETS["small"].codec_training
    for needle in ("Regenerate: `jcsr-bench reproduce --codec bmshj-samples --budget small "
                   f"--seeds {SEEDS}`", "bit-identical numbers only in the same environment "
                   "fingerprint", "- Environment fingerprint: CPU ", "torch 2.14.1",
                   "train on `samples-train`", "evaluate on `samples-test` (3 images)",
                   "qualities [1, 3, 5, 8]", "(q1: 0.0018, q3: 0.0067, q5: 0.025, q8: 0.18)",
                   f"{recipe.steps} steps each (q1 from a seeded random initialisation",
                   f"learning rate x {recipe.gamma} after {recipe.lr_drop:.0%} of each "
                   f"quality's steps, batch {recipe.batch}",
                   f"{recipe.patch}x{recipe.patch} crops", "N=64, M=96", "codec seed 0",
                   f"Seeds: {', '.join(map(str, range(SEEDS)))};",
                   "B1 1500 steps, B2 300 steps per quality",
                   f"{BUDGETS['small'].b3['steps']} steps per quality (L1 only",
                   "this run trained 0 of its 4 models", "## Training time (hand-written",
                   "Time taken: ", "on cpu", "bmshj-samples vs jpeg (codec only)",
                   "bmshj-samples vs jpeg (both + bicubic x4, at HR)"):
        assert needle in table, needle
    # every BD cell of the SR comparisons is a number (the curves are monotonic)
    import re

    rows = [line for line in table.splitlines() if re.match(r"\| (\d+ +\| )?B\d vs ", line)]
    assert len(rows) == 5 * (1 + SEEDS) and not [r for r in rows if "n/a" in r]
    (hr_row,) = [line for line in table.splitlines() if "(both + bicubic x4, at HR)" in line]
    assert "n/a" not in hr_row
    page = (root / "docs" / "reproduction.md").read_text()
    assert f"for {recipe.steps} steps per quality (batch {recipe.batch}" in page
    assert "2,800 steps in all" in page and recipe.warm_start and recipe.steps * 4 == 2800
    for figure in ("-4.03 ± 0.14", "+0.125", "-8.48 ± 0.25", "+1.99", "-2.22",
                   "+16.92 ± 1.83", "+13.15", "+87.94", "+82.34", "21.92 dB", "26.63 dB",
                   "0.112 bpp", "28.20 dB", "9.0 min", "44.2 min", "25.5 min"):
        assert figure in table, figure
        assert figure.replace("-", "−") in page, figure


def test_descending_recipe_trains_the_highest_rate_first_with_more_steps(
        tmp_path, monkeypatch):
    from dataclasses import replace

    import jcsr_bench.training.codec as codec_training

    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))
    calls, real = [], codec_training.train_codec

    def spy(*args, **kw):
        calls.append((list(args[3]), kw["steps"], kw["milestones"],
                      None if kw["warm_start"] is None else kw["warm_start"].name))
        return real(*args, **kw)

    monkeypatch.setattr(codec_training, "train_codec", spy)
    recipe = replace(RECIPE, steps=2, warm_start=True, descending=True, first_steps=4,
                     lr_drop=0.5)
    trained = train_learned_codec(registry(), "bmshj-samples", recipe, "samples-train",
                                  [1, 8], device="cpu", progress=False, log=lambda *a: None)
    q8_state = trained.weights[8].name.replace(".pth.tar", ".state.pth")
    assert calls == [([8], 4, [2], None), ([1], 2, [1], q8_state)]
    state = torch.load(tmp_path / "cache" / "trained" / "codecs" / trained.weights[1].parent.name
                       / q8_state, weights_only=True)
    assert state["config"]["milestones"] == [2] and state["sched"]["last_epoch"] == 4
    # the new fields enter the store key only when set: older recipes keep their keys
    assert set(RECIPE.hashed()) == set(RECIPE.__dataclass_fields__) - {
        "descending", "first_steps", "lr_drop", "gamma"}
    assert codec_key(registry(), "bmshj", recipe, "samples-train", [1, 8]) != codec_key(
        registry(), "bmshj", replace(recipe, descending=False), "samples-train", [1, 8])
