"""Train the small budget's learned codec with a candidate recipe and print its codec-only
points on the test split (bpp, PSNR-RGB), without the SR stages: a fast loop for tuning
``BUDGETS["small"].codec_training`` (issue 30). Run with ``OMP_NUM_THREADS=1`` and a
scratch ``JCSR_BENCH_CACHE``::

    python scripts/probe_codec_recipe.py '{"descending": true, "first_steps": 2400}'

The JSON overrides fields of the small budget's recipe.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from jcsr_bench.experiments.learned_codec import train_learned_codec
from jcsr_bench.experiments.reproduce import BUDGETS, _add_registry
from jcsr_bench.kit.paths import cache_dir
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.results.store import load_curves
from jcsr_bench.run import engine


def main(overrides: dict) -> None:
    budget = BUDGETS["small"]
    recipe = dataclasses.replace(budget.codec_training, **overrides)
    qualities = budget.qualities["bmshj-samples"]
    registry = load_registry()
    started = time.perf_counter()
    learned = train_learned_codec(registry, "bmshj-samples", recipe, budget.train, qualities,
                                  device="cpu", progress=False, log=print)
    trained_s = time.perf_counter() - started
    work = cache_dir() / "probe"
    _add_registry(registry, work / "registry-codec.yaml",
                  {"bmshj-samples": learned.registry_entry()}, kind="codecs")
    print(f"recipe {recipe}")
    print(f"trained {learned.trained_here} models in {trained_s / 60:.1f} min")
    for split in (budget.test, budget.train):
        summary = engine.run(registry=registry, datasets=[split], codecs=["bmshj-samples"],
                             srs=["none"], qualities=qualities, metrics=["psnr-rgb"],
                             device="cpu",
                             output=work / f"run-{learned.key[-8:]}-{split}", progress=False)
        curves, _ = load_curves(summary.db_path)
        curve = next(c for c in curves if c.dataset == split)
        print(f"codec only on {split}:")
        previous = None
        for point in curve.points:
            psnr = point.values["psnr-rgb"]
            flag = "" if previous is None or psnr > previous else "  <-- not monotonic"
            print(f"  q{point.quality}: {point.values['bpp']:.4f} bpp, {psnr:.2f} dB{flag}")
            previous = psnr


if __name__ == "__main__":
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
