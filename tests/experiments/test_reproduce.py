"""The paper's protocol at a toy budget, end to end, so it cannot rot."""

import math

import pytest

from jcsr_bench.experiments.reproduce import BUDGETS, reproduce
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import load_registry


def run_toy(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / cache))
    registry = load_registry(manager=PluginManager(entry_points=False))
    return reproduce(registry, codec="jpeg", budget="toy", device="cpu",
                     output=tmp_path / f"out-{cache}", progress=False, log=lambda *a: None)


@pytest.mark.slow
def test_toy_protocol_trains_evaluates_and_writes_the_table(tmp_path, monkeypatch):
    first = run_toy(tmp_path, monkeypatch, "a")
    text = first.table.read_text()
    for needle in ("B2 vs B1", "B1 vs bicubic", "B2 vs bicubic", "BD-Rate PSNR (%)",
                   "BD-MS-SSIM (dB)", "samples-train", "samples-test", "-23.33", "Time taken",
                   "Seeds: 0"):
        assert needle in text
    assert "Baseline 3 (joint decoding) does not apply: codec `jpeg` offers no latent" in text
    assert "B3 vs" not in text
    # each seed is timed; JPEG needs no training paid once per run
    assert "Per seed (its B1, B2 training and evaluation): seed 0 " in text
    assert "Paid once per run" not in text
    assert "training 3 of the 3 models" in text  # B1 + B2 at two qualities
    assert_environment_recorded(text)
    assert {p.suffix for p in first.plots} == {".pdf", ".png", ".svg"}
    for comparison in first.comparisons:
        (values,) = comparison.per_seed
        assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())

    # From scratch in a fresh cache, the same seed gives the same numbers (CPU).
    again = run_toy(tmp_path, monkeypatch, "b")
    assert [c.per_seed for c in again.comparisons] == [c.per_seed for c in first.comparisons]
    # A second run reuses every trained model and stored cell.
    cached = run_toy(tmp_path, monkeypatch, "b")
    assert "training 0 of the 3 models" in cached.table.read_text()
    assert [c.per_seed for c in cached.comparisons] == [c.per_seed for c in first.comparisons]


def assert_environment_recorded(text):
    """The table names the environment its numbers repeat in, and says so."""
    import importlib.metadata
    import platform

    import torch

    from jcsr_bench.kit.environment import cpu_model, isa_level

    line = next(x for x in text.splitlines() if x.startswith("- Environment fingerprint: "))
    assert f"CPU {cpu_model()}, ISA level {isa_level()} ({platform.machine()}), " \
        f"{torch.get_num_threads()} torch threads, device cpu (" in line
    for dist in ("torch", "numpy", "Pillow", "compressai"):
        assert f"{dist} {importlib.metadata.version(dist)}" in line
    assert f"python {platform.python_version()}" in line
    assert "Pillow:jpg " in line  # libjpeg's version decides JPEG payloads
    assert "same numbers on a CPU" not in text
    assert "bit-identical numbers only in the same environment fingerprint" in text


def test_committed_table_states_its_environment_and_the_cross_machine_spread():
    from pathlib import Path

    table = (Path(__file__).resolve().parents[2] / "leaderboards" / "reproduce-jpeg-small"
             / "table.md").read_text()
    assert "same numbers on a CPU" not in table
    assert "bit-identical numbers only in the same environment fingerprint" in table
    assert "- Environment fingerprint: " in table
    assert "-5.60 ± 0.76" in table and "AMD EPYC" in table  # the other machine's rerun


def test_splits_are_disjoint_and_photos_only():
    registry = load_registry(manager=PluginManager(entry_points=False))
    train = registry.build("datasets", BUDGETS["small"].train)
    test = registry.build("datasets", BUDGETS["small"].test)
    assert set(train.names).isdisjoint(test.names)
    assert {"motorcycle_left", "motorcycle_right"} <= set(train.names)  # the pair together
    assert "rocket" in test.names  # stored as JPEG: test-only


def test_unknown_budget_is_a_clear_error():
    from jcsr_bench.kit.errors import JcsrError

    registry = load_registry(manager=PluginManager(entry_points=False))
    with pytest.raises(JcsrError, match="choose from toy, small, full"):
        reproduce(registry, budget="huge")


def test_full_budget_evaluates_the_b2_it_trained_for_each_seed(tmp_path, monkeypatch):
    """Each seed's B2 is an instance whose own adapt section has that seed, so `run`
    asks the trained-weights store for exactly the models trained for it."""
    import jcsr_bench.training.sr as training
    from jcsr_bench.experiments.reproduce import _train_models
    from jcsr_bench.training.config import resolve_config

    calls = []
    monkeypatch.setattr(training, "train_sr", lambda registry, sr, codec, dataset, qualities,
                        **kw: calls.append((sr, dataset, kw.get("seed"))) or [])
    registry = load_registry()
    names, _ = _train_models(registry, BUDGETS["full"], "jpeg", [10], [0, 1], tmp_path,
                             "cpu", False, lambda *a: None)
    assert names == {0: ("esrgan-b1", "esrgan-b2"), 1: ("esrgan-b1", "esrgan-b2-df2k-seed1")}
    assert calls == [("esrgan-b2", None, None), ("esrgan-b2-df2k-seed1", None, None)]
    copy = registry.resolve("sr", "esrgan-b2-df2k-seed1").params["adapt"]
    assert resolve_config(copy)["seed"] == 1 and copy["init"] == "esrgan-b1"


def test_full_budget_trains_b3_from_each_seeds_b2(tmp_path, monkeypatch):
    """B3's start is the seed's own B2: the registry's esrgan-b3 for seed 0 (its adapt
    section already says so), a registered copy naming the seed's B2 otherwise."""
    import jcsr_bench.training.joint as training
    from jcsr_bench.experiments.reproduce import _train_joint

    calls = []
    monkeypatch.setattr(training, "train_joint", lambda registry, sr, codec, dataset, qualities,
                        **kw: calls.append(sr) or [])
    registry = load_registry()
    names = {0: ("esrgan-b1", "esrgan-b2"), 1: ("esrgan-b1", "esrgan-b2-df2k-seed1")}
    b3, _ = _train_joint(registry, BUDGETS["full"], "bmshj", [1], names, tmp_path, "cpu",
                         False, lambda *a: None)
    assert b3 == {0: "esrgan-b3", 1: "esrgan-b3-df2k-seed1"} and calls == list(b3.values())
    copy = registry.resolve("sr", "esrgan-b3-df2k-seed1").params["adapt"]
    assert copy["init"] == "esrgan-b2-df2k-seed1" and copy["joint"] == "synthesis"


def test_seed_times_state_each_seed_and_what_one_seed_costs_from_scratch():
    from jcsr_bench.experiments.reproduce import _seed_times

    text = _seed_times({0: 600.0, 1: 540.0}, 300.0, joint=True, from_scratch=True)
    assert "(its B1, B2, B3 training and evaluation): seed 0 10.0 min, seed 1 9.0 min." in text
    assert "Paid once per run (the learned codec's training and codec-only evaluation): " \
        "5.0 min; so one seed from scratch (seed 0) took 15.0 min." in text
    assert "Paid once" not in _seed_times({0: 60.0}, 0.0, joint=False, from_scratch=True)
    # models from the store: no from-scratch claim
    cached = _seed_times({0: 60.0}, 30.0, joint=True, from_scratch=False)
    assert "not from-scratch times" in cached and "from scratch (seed" not in cached
    assert _seed_times({}, 0.0, joint=False, from_scratch=True) == ""
