"""Speed of the compressai codec against CompressAI's own evaluator (pytest-benchmark).

Not part of the default test run. Run with::

    pytest benchmarks/bench_codecs.py

Both sides code the same images with the same bmshj2018-hyperprior checkpoint, on the
CPU with one thread (the evaluator's own setting): ours is ``encode`` + ``decode``
(uint8 in, payload with header and CRC, uint8 out); the evaluator's is its
``inference`` (pad, ``compress``, ``decompress``, crop) with its metric computation
stubbed out, so both time coding only (the evaluator gets its float input ready-made).
``test_ratio`` interleaves the two and reports the ratio of median times harness /
evaluator; it fails above 1.10 (timing noise on shared machines is a few percent).

The checkpoint is CompressAI's published q1 file when it is in torch hub's cache,
otherwise a randomly initialised model of the same size (128, 192 channels).
"""

from __future__ import annotations

import importlib
import statistics
import time

import pytest
import torch

from jcsr_bench.kit import paths
from jcsr_bench_plugins.codecs.compressai_codec import CompressAICodec

PUBLISHED = "bmshj2018-hyperprior-1-7eb97409.pth.tar"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from compressai.zoo.image import cfgs, model_architectures
    from skimage import data

    evaluator = importlib.import_module("compressai.utils.eval_model.__main__")
    torch.set_num_threads(1)
    ckpt = paths.torch_hub_checkpoints() / PUBLISHED
    if not ckpt.is_file():
        torch.manual_seed(0)
        net = model_architectures["bmshj2018-hyperprior"](*cfgs["bmshj2018-hyperprior"][1])
        ckpt = tmp_path_factory.mktemp("bench") / "bmshj2018-hyperprior-random.pth.tar"
        torch.save(net.state_dict(), ckpt)
    images = [  # real photographs, sides multiples of 64 (Kodak-like sizes)
        torch.from_numpy(data.astronaut()[:512, :512].copy()).permute(2, 0, 1).contiguous(),
        torch.from_numpy(data.coffee()[:384, :576].copy()).permute(2, 0, 1).contiguous(),
    ]
    codec = CompressAICodec(weights=str(ckpt), qualities=[1])
    model = evaluator.load_checkpoint("bmshj2018-hyperprior", False, str(ckpt))
    floats = [img.float().div(255) for img in images]

    def ours():
        for img in images:
            codec.decode(codec.encode(img, 1))

    def theirs():
        original = evaluator.compute_metrics
        evaluator.compute_metrics = lambda org, rec, max_val=255: {
            "psnr-rgb": 0.0, "ms-ssim-rgb": 0.0}
        try:
            for x in floats:
                evaluator.inference(model, x)
        finally:
            evaluator.compute_metrics = original

    ours()
    theirs()  # warm-up: model loading and first-call allocations are not timed
    return ours, theirs


@pytest.mark.benchmark(group="bmshj2018-hyperprior encode+decode, 2 images, 1 thread")
def test_harness(benchmark, setup):
    benchmark.pedantic(setup[0], rounds=5, iterations=1)


@pytest.mark.benchmark(group="bmshj2018-hyperprior encode+decode, 2 images, 1 thread")
def test_compressai_evaluator(benchmark, setup):
    benchmark.pedantic(setup[1], rounds=5, iterations=1)


def test_ratio(setup, capsys):
    ours, theirs = setup
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for i in range(9):  # interleaved, alternating order: both see the same machine load
        order = [("ours", ours), ("theirs", theirs)]
        for name, call in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    ratio = statistics.median(times["ours"]) / statistics.median(times["theirs"])
    with capsys.disabled():
        print(
            f"\nmedian encode+decode time, 2 images: harness {statistics.median(times['ours']):.3f}"
            f" s, CompressAI evaluator {statistics.median(times['theirs']):.3f} s, "
            f"ratio harness/evaluator {ratio:.3f}"
        )
    assert ratio < 1.10, f"harness is slower than CompressAI's evaluator: ratio {ratio:.3f}"
