"""``jcsr-bench train-codec``: rate-distortion training of a learned codec."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train-codec", parents=[common],
                       help="rate-distortion training of a learned codec")
    p.add_argument("--codec", required=True, help="a compressai codec instance or type")
    p.add_argument("--dataset", required=True, help="training dataset")
    p.add_argument("--qualities", help="e.g. '1..8'")
    p.add_argument("--patch", type=int, default=256, help="training patch (256 or 96)")
    p.add_argument("--steps", type=int, help="training steps per quality")
    p.add_argument("--batch", type=int, help="batch size")
    p.add_argument("--device", default="auto")
    p.add_argument("--output", default="runs", help="checkpoint folder (default ./runs)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.training.codec import train_codec_command

    return train_codec_command(
        registry=options.registry(args),
        codec=args.codec,
        dataset=args.dataset,
        qualities=options.qualities(args.qualities),
        patch=args.patch,
        steps=args.steps,
        batch=args.batch,
        device=args.device,
        output=Path(args.output),
        resume=args.resume,
        seed=args.seed,
    )
