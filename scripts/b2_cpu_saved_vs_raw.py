"""What `esrgan-b2-cpu` saves vs the generator it trained (issue 20's closing figures).

Trains the shipped ``esrgan-b2-cpu`` (registry as shipped, offline, one CPU thread) for
JPEG at one quality in a fresh cache, then scores on ``samples-test`` through that JPEG
quality, exactly as ``run`` does (mod-crop, MATLAB-bicubic x4 LR, JPEG, SR, PSNR over
RGB against the HR image):

- ``saved``: the EMA weights written to the trained-weights store (what ``run`` uses);
- ``raw``: the generator's own weights at the last step (from the training state).

``--constant-ema`` trains with the decay rule before issue 20 (constant ``ema`` from
step 0, no warm-up) for comparison::

    OMP_NUM_THREADS=1 python scripts/b2_cpu_saved_vs_raw.py --work /tmp/b2cpu
    OMP_NUM_THREADS=1 python scripts/b2_cpu_saved_vs_raw.py --work /tmp/b2cpu-const \\
        --constant-ema

Prints one line per photo and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="fresh cache folder")
    parser.add_argument("--quality", type=int, default=30, help="JPEG quality (30)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed (default: the preset's, 0)")
    parser.add_argument("--constant-ema", action="store_true",
                        help="no EMA warm-up (the rule before issue 20)")
    args = parser.parse_args()
    os.environ["JCSR_BENCH_CACHE"] = str(args.work / "cache")
    os.environ["JCSR_BENCH_OFFLINE"] = "1"
    os.environ.setdefault("TORCH_HOME", str(args.work / "torch"))

    import torch

    torch.set_num_threads(1)
    from jcsr_bench.imaging.lr import make_lr, mod_crop
    from jcsr_bench.imaging.quality import psnr_rgb
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench.training import checkpoint
    from jcsr_bench.training import sr as training
    from jcsr_bench_plugins.sr.esrgan import ESRGAN

    if args.constant_ema:
        training.ema_decay = lambda config, step: float(config["ema"])
    registry = load_registry()
    started = time.perf_counter()
    [result] = training.train_sr(registry, "esrgan-b2-cpu", "jpeg", None, [args.quality],
                                 device="cpu", seed=args.seed, progress=False)
    train_s = time.perf_counter() - started
    raw_path = args.work / "raw-generator.pth"
    state = checkpoint.load(result.checkpoint.with_suffix(".state.pth"))
    checkpoint.atomic_save({"params": state["generator"]}, raw_path)
    codec = registry.build("codecs", "jpeg")
    models = {
        "saved": registry.build("sr", "esrgan-b2-cpu").for_codec(codec.identity, args.quality),
        "raw": ESRGAN(weights=str(raw_path)),
    }
    scores: dict[str, dict[str, float]] = {name: {} for name in models}
    for name, image in registry.build("datasets", "samples-test"):
        hr = mod_crop(image, 4)
        decoded = codec.decode(codec.encode(make_lr(hr, 4), args.quality))
        for model_name, model in models.items():
            scores[model_name][name] = round(psnr_rgb(hr, model.upscale(decoded)), 2)
        print(f"{name}: saved {scores['saved'][name]:.2f} dB, raw {scores['raw'][name]:.2f} dB")
    print(json.dumps({"quality": args.quality, "seed": args.seed,
                      "constant_ema": args.constant_ema,
                      "train_s": round(train_s, 1), "steps": result.step,
                      "final_losses": result.losses, "psnr_rgb": scores}))


if __name__ == "__main__":
    main()
