"""``jcsr-bench plugins``: the installed plugins, what each registered, load errors."""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("plugins", parents=[common], help="list installed plugins")
    p.add_argument("--all", action="store_true", help="include the built-in plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
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
