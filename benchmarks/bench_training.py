"""Training speed of train-sr (steps/s): the CPU preset and the full ESRGAN size.

Not part of the default test run. Either through pytest-benchmark::

    pytest benchmarks/bench_training.py

or as a script (prints one JSON line per configuration)::

    python benchmarks/bench_training.py --device cuda --steps 20
    python benchmarks/bench_training.py --device cpu --only cpu --steps 10

What is timed: ``jcsr_bench.training.sr.fit`` GAN-stage steps (generator update with
the preset's losses -- pixel, VGG19 conv5_4 perceptual where its weight is > 0,
relativistic GAN --, discriminator update, EMA), data sampling included, on synthetic
in-memory pairs; the first step (warm-up) is not counted. VGG19 has the real
architecture with random weights when torchvision's ``vgg19-dcbb9e9d.pth`` is not in
torch hub's cache (same cost).

- ``cpu``: the ``cpu`` preset (batch 4, HR patch 64, discriminator width 16, no VGG19)
  with the ``esrgan-b2-cpu`` RRDBNet (32 features, 4 blocks, growth 16);
- ``esrgan``: the published recipe (batch 16, HR patch 128, discriminator 64) with the
  full RRDBNet (64 features, 23 blocks, growth 32, 16.7 M parameters).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from jcsr_bench.archs.rrdbnet import RRDBNet
from jcsr_bench.training import sr
from jcsr_bench.training.config import resolve_config
from jcsr_bench.training.pairs import PairSet

SETUPS = {
    "cpu": ({"num_feat": 32, "num_block": 4, "num_grow_ch": 16}, {"preset": "cpu"}),
    "esrgan": ({}, {"preset": "esrgan"}),
}


def _extractor() -> torch.nn.Module:
    from jcsr_bench.archs.vgg import vgg19_conv54

    try:
        return vgg19_conv54()
    except Exception:  # not cached / offline: same architecture, random weights
        from torchvision.models.vgg import cfgs, make_layers

        layers = make_layers(cfgs["E"])
        return vgg19_conv54({f"features.{k}": v for k, v in layers.state_dict().items()})


def _pairs(patch: int, n: int = 4) -> PairSet:
    gen = torch.Generator().manual_seed(0)
    size = patch * 2
    hr = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen).numpy()
          for _ in range(n)]
    lr = [torch.randint(0, 256, (3, size // 4, size // 4), dtype=torch.uint8,
                        generator=gen).numpy() for _ in range(n)]
    return PairSet([str(i) for i in range(n)], lr, hr, 4, "bench")


def measure(name: str, steps: int, device: str, extractor: torch.nn.Module | None = None
            ) -> dict:
    """Steps/s of ``steps`` GAN-stage steps after one warm-up step."""
    arch, adapt = SETUPS[name]
    cfg = resolve_config({**adapt, "l1_steps": 0, "checkpoint_every": 10**9,
                          "log_every": 10**9}, steps=1)
    extractor = extractor or _extractor()
    pairs = _pairs(cfg["patch"])
    torch.manual_seed(0)
    net = RRDBNet(**arch)
    sr.fit(net, pairs, cfg, device=device, feature_extractor=extractor, progress=False)
    cfg["steps"] = steps
    started = time.perf_counter()
    result = sr.fit(net, pairs, cfg, device=device, feature_extractor=extractor,
                    progress=False)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"setup": name, "device": str(sr.resolve_device(device)),
            "gpu": torch.cuda.get_device_name() if str(device).startswith("cuda") else None,
            "threads": torch.get_num_threads(), "batch": cfg["batch"], "patch": cfg["patch"],
            "params": sum(p.numel() for p in net.parameters()), "steps": result.step,
            "seconds": round(seconds, 3), "steps_per_s": round(result.step / seconds, 4),
            "losses": result.losses}


def test_train_sr_cpu_preset(benchmark):
    extractor = _extractor()
    benchmark.pedantic(measure, args=("cpu", 3, "cpu", extractor), rounds=1, iterations=1)


def test_train_sr_full_esrgan(benchmark):
    extractor = _extractor()
    benchmark.pedantic(measure, args=("esrgan", 2, "cpu", extractor), rounds=1, iterations=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--only", choices=sorted(SETUPS))
    args = parser.parse_args()
    extractor = _extractor()
    for name in [args.only] if args.only else list(SETUPS):
        print(json.dumps(measure(name, args.steps, args.device, extractor)), flush=True)


if __name__ == "__main__":
    main()
