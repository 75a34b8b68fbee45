"""``jcsr-bench visual``: the comparison grid of one stored image (the paper's Figs. 8-10)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jcsr_bench.cli import options


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("visual", parents=[common], help="visual comparison grid")
    p.add_argument("--results", default="jcsr-results", help="a run's output folder")
    p.add_argument("--image", required=True, help="dataset image name (DATASET/NAME when "
                   "several datasets have it)")
    p.add_argument("--qualities", help="e.g. 1,4,8 (default: lowest, middle and highest "
                   "stored quality of the first codec)")
    p.add_argument("--crop", help="x,y,w,h in HR pixels (default: a centred crop)")
    p.add_argument("--write", metavar="PATH", help="output .png/.svg/.pdf (default: "
                   "<results>/visual-<image>.png)")
    p.add_argument("--format", choices=["png", "svg", "pdf"],
                   help="file type of the default output name (pdf: fonts embedded, for a "
                   "paper); must agree with --write's suffix when both are given")
    p.add_argument("--device", default="auto", help="where SR recomputes the shown cells "
                   "(default auto)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from jcsr_bench.kit.errors import JcsrError
    from jcsr_bench.kit.identity import safe_filename
    from jcsr_bench.report.visual import parse_crop

    output = Path(args.write) if args.write else None
    if args.format and output is not None and output.suffix.lower() != f".{args.format}":
        raise JcsrError(f"--format {args.format} but --write {output} names a "
                        f"{output.suffix or 'suffix-less'} file: give --write "
                        f"{output.with_suffix('.' + args.format)} or leave out --format")
    if args.format and output is None:
        name = args.image.split("/")[-1]
        output = Path(args.results) / f"visual-{safe_filename(name)}.{args.format}"
    return visual_command(
        results=Path(args.results),
        image=args.image,
        qualities=options.qualities(args.qualities),
        crop=parse_crop(args.crop),
        output=output,
        registry=options.registry(args),
        device=args.device,
    )


def _warn(message: str) -> None:
    print(f"jcsr-bench visual: warning: {message}", file=sys.stderr)


def visual_command(*, results: Path, image: str, qualities: list | None,
                   crop: tuple[int, int, int, int] | None, output: Path | None,
                   registry: Any, device: str = "auto") -> int:
    """Write the comparison grid of one stored image (its cells recomputed through the
    work unit's stages on ``device``); print its path."""
    from jcsr_bench.kit.devices import resolve_device
    from jcsr_bench.report.visual import visual_grid
    from jcsr_bench.run.recompute import Recompute

    where = resolve_device(device)
    path = visual_grid(
        results=results, image=image, qualities=qualities, crop=crop, output=output,
        recompute=lambda dataset, name, runs, meta: Recompute(registry, dataset, name, runs,
                                                              meta, where, _warn),
        warn=_warn)
    print(path)
    return 0
