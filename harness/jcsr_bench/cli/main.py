"""The ``jcsr-bench`` command line: argument parsing only.

Each command imports its implementation lazily, so ``--help``, ``plugins`` and ``list``
never import torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from jcsr_bench import __version__
from jcsr_bench.kit.errors import JcsrError

KIND_ALIASES = {"codecs": "codecs", "codec": "codecs", "sr": "sr", "datasets": "datasets",
                "dataset": "datasets", "metrics": "metrics", "metric": "metrics",
                "suites": "suites", "suite": "suites"}


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _qualities(value: str | None) -> list[int | float | str] | None:
    """``--qualities`` (see :mod:`jcsr_bench.run.qualities`); ``None`` = each codec's ladder."""
    from jcsr_bench.run.qualities import normalise

    return normalise(value, "--qualities", sys.stderr)


def _registry(args: argparse.Namespace):
    from jcsr_bench.plugin.registry import load_registry

    return load_registry(args.registry or ())


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """One line per warning, without Python's echo of the source line that warned.

    jcsr-bench's own warnings are complete sentences; others keep where they came from.
    """
    text = str(message).removeprefix("jcsr-bench: ")
    if not category.__module__.startswith("jcsr_bench"):
        text += f" ({category.__name__} from {filename}:{lineno})"
    print(f"jcsr-bench: warning: {text}", file=file or sys.stderr)


# -- commands ----------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> int:
    from jcsr_bench.plugin.manager import PluginLoadWarning, get_plugin_manager

    with warnings.catch_warnings():  # listed below as "load error", not twice
        warnings.simplefilter("ignore", PluginLoadWarning)
        manager = get_plugin_manager()
        infos = manager.plugins(include_builtins=args.all)
    errors = manager.errors
    if args.json:
        payload = {
            "plugins": [info.__dict__ for info in infos],
            "errors": [error.__dict__ for error in errors],
        }
        print(json.dumps(payload, indent=2, sort_keys=True))
        return 0
    if not infos and errors:
        print(f"No third-party plugin loaded: {len(errors)} failed (below).")
    elif not infos:
        print("No third-party plugins installed." + ("" if args.all else
              " (`--all` also lists the built-ins.)"))
    for info in infos:
        version = f" {info.version}" if info.version else ""
        print(f"{info.name} ({info.distribution}{version})")
        print(f"  hooks: {', '.join(info.hooks) or '-'}")
        for kind, names in sorted(info.registered.items()):
            print(f"  {kind}: {', '.join(names)}")
    for error in errors:
        print(f"load error: {error.plugin} ({error.distribution}): {error.error}")
    return 0


def _list_trained(args: argparse.Namespace) -> int:
    """``list sr --trained``: the trained-weights store, and what each model came from."""
    from jcsr_bench.artifacts.trained_store import stored_models
    from jcsr_bench.kit.paths import trained_dir

    if args.kind and KIND_ALIASES[args.kind] != "sr":
        raise JcsrError("--trained lists trained SR models: use `jcsr-bench list sr --trained`")
    models = stored_models()
    if args.json:
        print(json.dumps([{"checkpoint": str(m.checkpoint), **m.meta} for m in models],
                         indent=2, default=str))
        return 0
    if not models:
        print(f"The trained-weights store ({trained_dir()}) is empty.")
        return 0
    from tabulate import tabulate

    rows = [m.summary() for m in models]
    columns = ["sr", "codec", "quality", "steps", "init", "dataset", "key", "created"]
    print(tabulate([[r[c] for c in columns] for r in rows], headers=columns))
    print(f"\n{len(rows)} model(s) in {trained_dir()} (`--json` for every field and path)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.trained:
        return _list_trained(args)
    registry = _registry(args)
    kinds = [KIND_ALIASES[args.kind]] if args.kind else ["codecs", "sr", "datasets",
                                                           "metrics", "suites"]
    rows: list[dict[str, str]] = []
    for kind in kinds:
        if kind == "suites":
            for suite in registry.suites.values():
                anchor = "+".join(suite.anchor) if suite.anchor else "-"
                rows.append({"kind": kind, "name": suite.name, "what": "suite",
                             "details": f"datasets={','.join(suite.datasets)} codecs="
                             f"{','.join(suite.codecs)} sr={','.join(suite.sr)} anchor={anchor}",
                             "from": f"{suite.file}:{suite.line}"})
            continue
        for instance in registry.instances(kind).values():
            rows.append({"kind": kind, "name": instance.name,
                         "what": f"instance of {instance.type}",
                         "details": instance.description, "from": instance.where})
        for name, reg in sorted(registry.manager.types(kind).items()):
            rows.append({"kind": kind, "name": name, "what": "type",
                         "details": reg.description, "from": reg.source})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from tabulate import tabulate

    print(tabulate([list(r.values()) for r in rows], headers=["kind", "name", "what",
                                                               "details", "from"]))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from jcsr_bench.api import run_benchmark

    result = run_benchmark(
        registry=_registry(args),
        suite=args.suite,
        datasets=_split(args.dataset),
        codecs=_split(args.codec),
        srs=_split(args.sr),
        qualities=_qualities(args.qualities),
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
        metrics=_split(args.metrics),
        sr_options={"tile": args.tile, "tile_overlap": args.tile_overlap,
                    "precision": args.precision},
        threads=args.threads,
        executor=args.executor,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        ray_address=args.ray_address,
        progress=None,  # bars when stderr is a terminal
    )
    return result.exit_code


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from jcsr_bench.report.leaderboard import leaderboard_command

    return leaderboard_command(
        results=Path(args.results),
        anchor=args.anchor,
        method=args.method,
        write=Path(args.write) if args.write else None,
        pairs=args.pairs,
    )


def cmd_visual(args: argparse.Namespace) -> int:
    from jcsr_bench.report.visual import parse_crop, visual_command

    return visual_command(
        results=Path(args.results),
        image=args.image,
        qualities=_qualities(args.qualities),
        crop=parse_crop(args.crop),
        output=Path(args.write) if args.write else None,
        registry=_registry(args),
        device=args.device,
    )


def cmd_train_sr(args: argparse.Namespace) -> int:
    from jcsr_bench.training.sr import train_sr_command

    return train_sr_command(
        registry=_registry(args),
        sr=args.sr,
        codec=args.codec,
        dataset=args.dataset,
        qualities=_qualities(args.qualities),
        steps=args.steps,
        batch=args.batch,
        patch=args.patch,
        device=args.device,
        resume=args.resume,
        seed=args.seed,
        retrain=args.retrain,
        executor=args.executor,
        gpus_per_job=args.gpus_per_job,
        ray_address=args.ray_address,
    )


def cmd_train_codec(args: argparse.Namespace) -> int:
    from jcsr_bench.training.codec import train_codec_command

    return train_codec_command(
        registry=_registry(args),
        codec=args.codec,
        dataset=args.dataset,
        qualities=_qualities(args.qualities),
        patch=args.patch,
        steps=args.steps,
        batch=args.batch,
        device=args.device,
        output=Path(args.output),
        resume=args.resume,
        seed=args.seed,
    )


def cmd_reproduce(args: argparse.Namespace) -> int:
    from jcsr_bench.experiments.reproduce import reproduce_command

    return reproduce_command(
        registry=_registry(args),
        codec=args.codec,
        budget=args.budget,
        seeds=args.seeds,
        device=args.device,
        output=Path(args.output),
    )


def cmd_baseline(args: argparse.Namespace) -> int:
    from jcsr_bench.ci.commands import baseline_command

    return baseline_command(Path(args.results), Path(args.out))


def cmd_compare(args: argparse.Namespace) -> int:
    from jcsr_bench.ci.commands import compare_command

    return compare_command(
        baseline=Path(args.baseline),
        current=Path(args.current) if args.current else None,
        run=args.run,
        output=Path(args.output) if args.output else None,
        registry_files=args.registry or (),
        max_bd_rate=args.max_bd_rate,
        max_quality_drop=args.max_quality_drop,
        exact=args.exact,
        fail_on_time=args.fail_on_time,
        method=args.method,
        seed=args.seed,
        markdown=Path(args.markdown) if args.markdown else None,
        json_out=Path(args.json) if args.json else None,
        junit=Path(args.junit) if args.junit else None,
        plots=Path(args.plots) if args.plots else None,
        update_baseline=args.update_baseline,
        device=args.device,
    )


def cmd_history(args: argparse.Namespace) -> int:
    from jcsr_bench.ci.commands import history_add_command, history_show_command

    if args.action == "add":
        return history_add_command(results=Path(args.results), store=Path(args.store),
                                   commit=args.commit, anchor=args.anchor)
    return history_show_command(store=Path(args.store), metric=args.metric,
                                out_dir=Path(args.out))


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jcsr-bench",
        description="Benchmark joint learned image compression and super-resolution: "
        "HR -> x4 down -> codec -> SR -> score (bits, PSNR, MS-SSIM), BD leaderboards.",
    )
    parser.add_argument("--version", action="version", version=f"jcsr-bench {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", action="append", metavar="FILE",
                        help="extra registry YAML on top of the shipped one (repeatable)")
    common.add_argument("--offline", action="store_true",
                        help="never use the network (same as JCSR_BENCH_OFFLINE=1)")
    common.add_argument("--data-root", metavar="DIR",
                        help="folder holding datasets (same as JCSR_BENCH_DATA_ROOT)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", parents=[common], help="list installed plugins")
    p.add_argument("--all", action="store_true", help="include the built-in plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("list", parents=[common], help="list instances and types")
    p.add_argument("kind", nargs="?", choices=sorted(KIND_ALIASES), help="what to list")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--trained", action="store_true",
                   help="with `sr`: the trained baseline-2 models in the store, and what "
                   "each was trained from")
    p.set_defaults(func=cmd_list)

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
    p.add_argument("--metrics", help="comma list of metrics to compute (default: every "
                   "registered metric; those missing weights offline are skipped)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="SR inference on N x N LR tiles (bounds memory; 0 = whole image)")
    p.add_argument("--tile-overlap", type=int, metavar="N", help="tile overlap (default 16)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                   help="SR inference precision (default fp32; bf16/fp16 on CUDA)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads of the local "
                   "executor (default: $OMP_NUM_THREADS, else every usable core)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where work units run: this process, or Ray tasks (default local)")
    p.add_argument("--workers", type=int, metavar="N", help="Ray: units computed at once "
                   "(default: the cluster's CPUs / --threads-per-worker)")
    p.add_argument("--threads-per-worker", type=int, metavar="N",
                   help="Ray: torch threads (and CPUs reserved) per worker (default: an equal "
                   "share of the CPUs)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="F",
                   help="Ray: GPUs per worker, fractions share one (e.g. 0.25; default 0 = "
                   "CPU)")
    p.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="Ray: a running cluster (default: start a local Ray)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", parents=[common],
                       help="re-render the leaderboard from stored results")
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--anchor", help="codec+sr (default: the run's anchor)")
    p.add_argument("--method", choices=["pchip", "akima", "cubic"], default="pchip",
                   help="BD fit (default pchip, the JVET/VCEG Excel method)")
    p.add_argument("--write", metavar="PATH", help="write here (default: print)")
    p.add_argument("--pairs", action="append", metavar="TEST:ANCHOR",
                   help="paper-style table of one combination against another, e.g. "
                   "bmshj+esrgan-b2:bmshj+esrgan-b1 (repeatable)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("visual", parents=[common], help="visual comparison grid")
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--image", required=True, help="dataset image name (DATASET/NAME when "
                   "several datasets have it)")
    p.add_argument("--qualities", help="e.g. 1,4,8 (default: lowest, middle and highest "
                   "stored quality of the first codec)")
    p.add_argument("--crop", help="x,y,w,h in HR pixels (default: a centred crop)")
    p.add_argument("--write", metavar="PATH", help="output .png/.svg/.pdf (default: "
                   "<results>/visual-<image>.png)")
    p.add_argument("--device", default="auto", help="where SR recomputes the shown cells "
                   "(default auto)")
    p.set_defaults(func=cmd_visual)

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
    p.set_defaults(func=cmd_train_sr)

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
    p.set_defaults(func=cmd_train_codec)

    p = sub.add_parser("reproduce", parents=[common],
                       help="the paper's B2-over-B1 experiment (small budget runs offline)")
    p.add_argument("--codec", default="jpeg",
                   help="codec instance (default jpeg); bmshj-samples trains a "
                   "bmshj2018-hyperprior codec on the training split first")
    p.add_argument("--budget", choices=["toy", "small", "full"], default="small")
    p.add_argument("--seeds", type=int, help="number of seeds (default 3 on small)")
    p.add_argument("--device", default="auto")
    p.add_argument("--output", default="leaderboards", help="where the table and plot go")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("baseline", parents=[common],
                       help="save a run's results as a CI baseline (JSON)")
    p.add_argument("action", choices=["save"])
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--out", required=True, metavar="FILE.json", help="baseline file to write")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("compare", parents=[common],
                       help="compare results with a baseline: exit 0 pass, 1 regression, "
                       "3 incomparable")
    p.add_argument("baseline", help="baseline JSON file (or a results folder)")
    p.add_argument("current", nargs="?", help="results folder or baseline file (or --run)")
    p.add_argument("--run", metavar="SUITE", help="run this suite first and compare its results")
    p.add_argument("--output", metavar="DIR", help="where --run writes (default: a temporary "
                   "folder)")
    p.add_argument("--device", default="cpu", help="device for --run (default cpu: "
                   "deterministic)")
    p.add_argument("--max-bd-rate", type=_non_negative, metavar="PP",
                   help="largest accepted BD-rate increase, percentage points (default 0.5)")
    p.add_argument("--max-quality-drop", type=_non_negative, metavar="DB",
                   help="largest accepted BD-quality drop, metric units (default 0.02)")
    p.add_argument("--exact", action="store_true",
                   help="any change of the outputs fails (when the environments match)")
    p.add_argument("--fail-on-time", type=_non_negative, metavar="FACTOR",
                   help="fail when a timing is FACTOR times slower (default: warn only)")
    p.add_argument("--method", choices=["pchip", "akima", "cubic"], default="pchip",
                   help="BD fit (default pchip)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown report here")
    p.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one case per "
                   "dataset x combination x metric)")
    p.add_argument("--plots", metavar="DIR", help="write baseline-vs-current RD overlays of "
                   "every changed combination")
    p.add_argument("--update-baseline", action="store_true",
                   help="write CURRENT as the new baseline (explicit, atomic)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("history", parents=[common],
                       help="benchmark history over commits (SQLite, chart, table)")
    p.add_argument("action", choices=["add", "show"])
    p.add_argument("--results", default="jcsr-results", help="add: a run's output folder "
                   "(or a baseline file)")
    p.add_argument("--commit", metavar="SHA", help="add: the commit (default: the "
                   "baseline's, else git HEAD)")
    p.add_argument("--anchor", metavar="CODEC+SR", help="add: BD anchor (default: the "
                   "suite's)")
    p.add_argument("--store", default="jcsr-history.sqlite", metavar="FILE",
                   help="history store (default ./jcsr-history.sqlite)")
    p.add_argument("--metric", default="psnr-rgb", help="show: quality metric (default "
                   "psnr-rgb)")
    p.add_argument("--out", default="jcsr-history", metavar="DIR",
                   help="show: where the charts go (default ./jcsr-history)")
    p.set_defaults(func=cmd_history)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if getattr(args, "offline", False):
        os.environ["JCSR_BENCH_OFFLINE"] = "1"
    if getattr(args, "data_root", None):
        os.environ["JCSR_BENCH_DATA_ROOT"] = args.data_root
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except JcsrError as exc:
        print(f"jcsr-bench: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # a full disk outside the places that name it
        from jcsr_bench.kit.disk import full_disk_error

        error = full_disk_error(exc)
        if error is None:
            raise
        print(f"jcsr-bench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jcsr-bench: interrupted; finished results are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
