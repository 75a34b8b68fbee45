"""``jcsr-bench train-sr``: fine-tune an adaptive SR model per codec quality (baseline 2).

Exit 0 when every quality finished, 130 when interrupted. Models already in the store
under the same key are kept unless ``--retrain``; an unfinished one continues from its
last state.
"""

from __future__ import annotations

import argparse
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train-sr", parents=[common],
                       help="fine-tune an adaptive SR model per codec quality (baseline 2)")
    p.add_argument("--sr", required=True, help="an SR instance with an `adapt` section")
    p.add_argument("--codec", required=True, help="codec instance")
    p.add_argument("--dataset", help="training dataset (default: the adapt section's "
                   "`dataset`, else df2k)")
    p.add_argument("--qualities", help="e.g. '1..8' (default: the codec's ladder)")
    p.add_argument("--steps", type=int, help="training steps per quality")
    p.add_argument("--batch", type=int, help="batch size")
    p.add_argument("--patch", type=int, help="HR patch size")
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last saved state (always done for a model not "
                   "yet in the store; with --retrain, continue rather than start over)")
    p.add_argument("--retrain", action="store_true",
                   help="train again models already in the store under the same key")
    p.add_argument("--seed", type=int, help="training seed (default: the adapt section's)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="train the qualities one after another, or as concurrent Ray tasks")
    p.add_argument("--gpus-per-job", type=float, default=0.0, metavar="F",
                   help="Ray: GPU share per quality (0.125: eight share one GPU; default 0 "
                   "= CPU)")
    p.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="Ray: a running cluster (default: start a local Ray)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.training.sr import train_sr

    results = train_sr(
        options.registry(args),
        args.sr,
        args.codec,
        args.dataset,
        options.qualities(args.qualities),
        steps=args.steps,
        batch=args.batch,
        patch=args.patch,
        device=args.device,
        resume=args.resume,
        seed=args.seed,
        only_missing=not args.retrain,
        executor=args.executor,
        gpus_per_job=args.gpus_per_job,
        ray_address=args.ray_address,
    )
    for result in results:
        print(f"{args.sr} {args.codec} q{result.quality}: {result.status}, step {result.step} "
              f"-> {result.checkpoint}")
    return 130 if any(r.status == "interrupted" for r in results) else 0
