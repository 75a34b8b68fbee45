"""``jcsr-bench list``: registry instances, plugin types and suites; ``--trained`` models."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jcsr_bench.cli import options
from jcsr_bench.kit.errors import JcsrError

KIND_ALIASES = {"codecs": "codecs", "codec": "codecs", "sr": "sr", "datasets": "datasets",
                "dataset": "datasets", "metrics": "metrics", "metric": "metrics",
                "suites": "suites", "suite": "suites"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("list", parents=[common], help="list instances and types")
    p.add_argument("kind", nargs="?", choices=sorted(KIND_ALIASES), help="what to list")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--trained", action="store_true",
                   help="with `sr`: the trained baseline-2 models in the store, and what "
                   "each was trained from")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    if args.trained:
        return _list_trained(args)
    registry = options.registry(args)
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

    selects = _selecting_instances(options.registry(args))
    rows = [{**m.summary(), "run --sr": ", ".join(selects.get(m.meta.get("adapt_identity"), []))
             or "none (train-sr --save-as NAME writes one)"} for m in models]
    columns = ["sr", "codec", "quality", "steps", "init", "dataset", "key", "created",
               "run --sr"]
    print(tabulate([[r[c] for c in columns] for r in rows], headers=columns))
    print(f"\n{len(rows)} model(s) in {trained_dir()} (`--json` for every field and path); "
          "`run --sr` names the registry instances whose configuration selects each model")
    return 0


def _selecting_instances(registry: Any) -> dict[str, list[str]]:
    """Training identity -> the adaptive SR instances whose ``adapt`` section gives it
    (instances that cannot be keyed here, e.g. their dataset is absent, are left out)."""
    found: dict[str, list[str]] = {}
    for name, instance in registry.instances("sr").items():
        if not instance.params.get("adapt"):
            continue
        try:
            identity = registry.build("sr", name).adapt_identity
        except JcsrError:
            continue
        found.setdefault(str(identity), []).append(name)
    return found
