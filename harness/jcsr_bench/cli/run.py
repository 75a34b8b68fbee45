"""``jcsr-bench run``: evaluate every dataset x codec x quality x SR cell."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common],
                       help="evaluate every dataset x codec x quality x SR cell")
    p.add_argument("--suite", help="a suite from the registry (default: 'default' when no "
                   "--dataset/--codec/--sr is given)")
    p.add_argument("--dataset", help="comma list of dataset instances or types, or 'all'")
    p.add_argument("--codec", help="comma list of codec instances or types, or 'all'")
    p.add_argument("--sr", help="comma list of SR instances or types, or 'all'")
    p.add_argument("--qualities", help="e.g. '1,4,8', '1..8' or '10..90..20' (inclusive "
                   "ranges; default: "
                   "each codec's ladder)")
    p.add_argument("--scale", type=int, default=4,
                   help="downsampling factor; 1 = the codec sees the dataset images (default 4)")
    p.add_argument("--kernel", choices=["matlab", "pil"], default="matlab",
                   help="LR downsampling kernel (default matlab, as published SR weights)")
    p.add_argument("--limit", type=int, help="use only the first N images of each dataset")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--output", default="jcsr-results", help="output folder (default "
                   "./jcsr-results)")
    p.add_argument("--overwrite", choices=["never", "missing", "always"], default="missing",
                   help="which cells to (re)compute (default missing)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell")
    p.add_argument("--dry-run", action="store_true", help="print the plan, compute nothing")
    p.add_argument("--wait", action="store_true", help="when another run is writing the "
                   "same --output folder, wait for it to finish instead of stopping")
    p.add_argument("--train", action="store_true",
                   help="train missing adaptive SR models (baseline 2) first")
    p.add_argument("--anchor", help="leaderboard anchor as codec+sr (default: the suite's)")
    p.add_argument("--bd-aggregate", choices=["curve", "per-image"], default="curve",
                   help="leaderboard BD of the mean curves (default, the paper's convention) "
                   "or the mean of per-image BD-rates")
    p.add_argument("--rate", choices=["mean", "pooled"], default="mean",
                   help="rate of a point: mean of per-image bpp (default) or total bits / "
                   "total pixels")
    p.add_argument("--metrics", help="comma list of metrics to compute (default: every "
                   "registered metric; those missing weights offline are skipped)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="SR inference on N x N LR tiles (bounds memory; 0 = whole image)")
    p.add_argument("--tile-overlap", type=int, metavar="N", help="tile overlap (default 16)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                   help="SR inference precision (default fp32; bf16/fp16 on CUDA)")
    p.add_argument("--threads", type=int, metavar="N", help="alone: run the units in this "
                   "process with N torch threads (default: worker processes, see --workers)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where work units run: processes of this machine, or Ray tasks "
                   "(default local)")
    p.add_argument("--workers", type=int, metavar="N", help="units computed at once, each in "
                   "its own process (local default: one per usable core when there is more "
                   "than one unit; 1 = this process; Ray: the cluster's CPUs / "
                   "--threads-per-worker)")
    p.add_argument("--threads-per-worker", type=int, metavar="N",
                   help="torch threads (Ray: and CPUs reserved) per worker (local default 1; "
                   "Ray: an equal share of the CPUs)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="F",
                   help="Ray: GPUs per worker, fractions share one (e.g. 0.25; default 0 = "
                   "CPU)")
    p.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="Ray: a running cluster (default: start a local Ray)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.api import run_benchmark

    result = run_benchmark(
        registry=options.registry(args),
        suite=args.suite,
        datasets=options.split_list(args.dataset),
        codecs=options.split_list(args.codec),
        srs=options.split_list(args.sr),
        qualities=options.qualities(args.qualities),
        scale=args.scale,
        kernel=args.kernel,
        limit=args.limit,
        device=args.device,
        output=Path(args.output),
        wait=args.wait,
        overwrite=args.overwrite,
        fail_fast=args.fail_fast,
        dry_run=args.dry_run,
        train=args.train,
        anchor=args.anchor,
        metrics=options.split_list(args.metrics),
        sr_options={"tile": args.tile, "tile_overlap": args.tile_overlap,
                    "precision": args.precision},
        threads=args.threads,
        executor=args.executor,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        ray_address=args.ray_address,
        bd_aggregate=args.bd_aggregate,
        rate=args.rate,
        progress=None,  # bars when stderr is a terminal
    )
    return result.exit_code
