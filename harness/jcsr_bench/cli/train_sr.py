"""``jcsr-bench train-sr``: fine-tune an adaptive SR model per codec quality (baseline 2).

Exit 0 when every quality finished, 130 when interrupted. Models already in the store
under the same key are kept unless ``--retrain``; an unfinished one continues from its
last state.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
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
    p.add_argument("--save-as", metavar="NAME",
                   help="with --dataset/--steps/--batch/--patch/--seed: write the SR registry "
                   "entry NAME that selects exactly these models to ./jcsr-bench.yaml")
    p.set_defaults(func=handle)


def override_entry(registry: Any, sr: str, overrides: dict[str, Any]) -> dict[str, Any] | None:
    """The registry entry whose ``adapt`` section is ``sr``'s with the command line's
    overrides: ``run --sr`` that entry evaluates exactly the models train-sr made. None
    when the overrides change nothing."""
    import copy

    instance = registry.resolve("sr", sr)
    params = copy.deepcopy(instance.params)
    adapt = dict(params.get("adapt") or {})
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given or all(adapt.get(k) == v for k, v in given.items()):
        return None
    params["adapt"] = {**adapt, **given}
    words = ", ".join(f"{k} {v}" for k, v in given.items())
    return {"type": instance.type, "description": f"{sr} trained with {words} (train-sr)",
            **{k: v for k, v in params.items() if k != "description"}}


def _suggested_name(sr: str, overrides: dict[str, Any]) -> str:
    given = "-".join(f"{k}{v}" for k, v in overrides.items() if v is not None)
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{sr}-{given}")


def _entry_yaml(name: str, entry: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump({"sr": {name: entry}}, sort_keys=False, default_flow_style=None,
                          width=88)


def check_free(name: str, registry: Any) -> None:
    """Refuse a ``--save-as`` name an SR instance or type already has."""
    from jcsr_bench.kit.errors import JcsrError

    if name in registry.instances("sr") or name in registry.manager.types("sr"):
        where = registry.resolve("sr", name).where
        raise JcsrError(f"--save-as {name}: sr {name!r} already exists ({where}); choose "
                        "another name")


def save_entry(name: str, entry: dict[str, Any], registry: Any,
               path: Path = Path("jcsr-bench.yaml")) -> Path:
    """Add ``sr.NAME`` to the project-local registry ``path`` (created if absent),
    keeping the rest of the file as it is; refuses a name already taken."""
    from jcsr_bench.kit.atomic import atomic_write
    from jcsr_bench.kit.errors import JcsrError

    check_free(name, registry)
    block = _entry_yaml(name, entry)
    if not path.exists():
        atomic_write(path, block)
        return path
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    head = [i for i, line in enumerate(lines) if re.match(r"sr:\s*(#.*)?$", line)]
    body = "".join(block.splitlines(keepends=True)[1:])  # the entry, under "sr:"
    if head:
        lines.insert(head[0] + 1, body)
        atomic_write(path, "".join(lines))
    elif re.search(r"^sr\s*:", text, re.M):
        raise JcsrError(f"--save-as: {path} has an sr section this command cannot extend; "
                        f"add the entry by hand:\n{block}")
    else:
        atomic_write(path, text + ("" if text.endswith("\n") or not text else "\n") + block)
    return path


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.kit.errors import JcsrError
    from jcsr_bench.training.adaptive import train_adaptive

    registry = options.registry(args)
    overrides = {"dataset": args.dataset, "steps": args.steps, "batch": args.batch,
                 "patch": args.patch, "seed": args.seed}
    entry = override_entry(registry, args.sr, overrides)
    if args.save_as and entry is None:
        raise JcsrError("--save-as writes an entry for --dataset/--steps/--batch/--patch/"
                        f"--seed overrides; without them `run --sr {args.sr}` already "
                        "evaluates these models")
    if args.save_as:
        check_free(args.save_as, registry)  # before any training
    results = train_adaptive(
        registry,
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
    if entry is not None:
        name = args.save_as or _suggested_name(args.sr, overrides)
        qualities = f" --qualities {args.qualities}" if args.qualities else ""
        use = f"jcsr-bench run --sr {name} --codec {args.codec}{qualities}"
        if args.save_as:
            path = save_entry(name, entry, registry)
            print(f"wrote sr.{name} to {path}: `{use}` evaluates these models")
        else:
            print(f"`run --sr {args.sr}` does not use these models. This registry entry "
                  f"selects exactly them (add it to ./jcsr-bench.yaml, or train with "
                  f"--save-as {name}):\n\n{_entry_yaml(name, entry)}\nthen: {use}")
    return 130 if any(r.status == "interrupted" for r in results) else 0
