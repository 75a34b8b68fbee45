"""Writing a results folder's reports: CSV, CompressAI JSON, leaderboard, RD plots, and
the self-contained ``report.html`` (:mod:`.html`) that links all of them.

All of them are rendered from the whole store (:mod:`.coverage` says what that
covers), so they agree with each other and with ``jcsr-bench leaderboard --results``.
``outputs.json`` lists exactly the files of the latest rendering and a fingerprint of
their content. Files that an earlier rendering wrote and this one does not (a dataset
or combination no longer shown, an older layout) are deleted, so a folder never mixes
exports of different renderings; rendering is skipped when nothing changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jcsr_bench.kit.atomic import atomic_write
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.identity import digest
from jcsr_bench.kit.version import __version__
from jcsr_bench.report.coverage import load_view
from jcsr_bench.report.exports import compressai_exports, csv_text

__all__ = ["HTML", "RECORD", "Written", "read_record", "write_html", "write_reports"]

RECORD = "outputs.json"
# what the harness writes into a results folder (anything else there is left alone)
OWN_FILES = ("results.csv", "leaderboard.md", "json/*/*.json", "plots/rd-*.png",
             "plots/rd-*.svg", "plots/pd-*.png", "plots/pd-*.svg", "plots/*.pdf",
             "report.html")
HTML = "report.html"


@dataclass
class Written:
    """The files of the folder's reports and one line saying what they cover."""

    files: list[Path]
    covers: str = ""
    notes: list[str] = field(default_factory=list)


def write_reports(output: Path, stream: TextIO, description: str = "",
                  recompute: Callable[[str, str, dict, dict], Any] | None = None) -> Written:
    """Render every report of ``output`` from its store; remove stale ones (module doc).

    ``recompute`` (``jcsr_bench.run.recompute.Recompute``'s factory, as ``visual`` takes
    it) gives ``report.html`` its image comparison; without it the page has none."""
    from jcsr_bench.report.leaderboard import render_leaderboard, reporting_of

    output = Path(output)
    view = load_view(output)
    texts: dict[str, str] = {"results.csv": csv_text(view.rows)}
    texts.update({f"json/{path.as_posix()}": text
                  for path, text in compressai_exports(view.curves, description).items()})
    notes = []
    if view.anchor is not None:
        if view.anchor.fallback:
            notes.append(f"leaderboard anchor {view.anchor.label}: {view.anchor.note}")
        try:
            aggregate, rate = reporting_of(view.meta)  # the latest run's --bd-aggregate, --rate
            texts["leaderboard.md"] = render_leaderboard(
                view.curves, view.meta, anchor=view.anchor.pair, anchor_note=view.anchor.note,
                aggregate=aggregate, rate=rate)
        except JcsrError as exc:
            notes.append(f"no leaderboard: {exc}")
    for note in notes:
        print(f"note: {note}", file=stream)
    fingerprint = digest({"texts": texts, "anchor": view.anchor and view.anchor.label,
                          "harness": __version__})
    previous = read_record(output)
    if previous.get("fingerprint") == fingerprint:
        files = [output / f for f in previous.get("files", [])]
        if all(f.is_file() for f in files):
            _remove_stale(output, files, previous, stream)
            return Written(files, view.summary(), notes)
    for relative, text in texts.items():
        atomic_write(output / relative, text)
    files = [output / relative for relative in texts]
    if view.curves and view.anchor is not None:
        from jcsr_bench.report.plots import plot_reports

        files += plot_reports(view.curves, output / "plots", anchor=view.anchor.pair)
        files.append(write_html(output, view, [*files, output / RECORD], recompute, stream))
    _remove_stale(output, files, previous, stream)
    atomic_write(output / RECORD, json.dumps({
        "fingerprint": fingerprint, "covers": view.summary(),
        "files": [f.relative_to(output).as_posix() for f in files]}, indent=1) + "\n")
    return Written(files, view.summary(), notes)


def write_html(output: Path, view: Any, exports: list[Path],
               recompute: Callable[[str, str, dict, dict], Any] | None, stream: TextIO,
               target: Path | None = None, images: list[str] | None = None) -> Path:
    """``report.html`` (or ``target``) of the folder, linking ``exports`` (module doc)."""
    from jcsr_bench.kit.errors import one_line
    from jcsr_bench.report.html import collect_images, render_report
    from jcsr_bench.results.store import DB_NAME, Store

    target = Path(target or output / HTML)
    shown: list = []
    notes: list[str] = []
    if recompute is not None:
        try:
            shown, notes = collect_images(output, recompute, names=images)
        except Exception as exc:  # the page still shows every stored number
            if images:  # asked for by name: say why not
                raise
            notes.append(f"no image comparison: recomputing the images failed: {one_line(exc)}")
    for note in notes:
        print(f"note: {note}", file=stream)
    with Store(output / DB_NAME, readonly=True) as store:
        runs = store.runs()
    relative = [os.path.relpath(f, target.parent) for f in exports if Path(f) != target]
    atomic_write(target, render_report(view, runs=runs, images=shown, notes=notes,
                                       exports=[Path(r).as_posix() for r in relative]))
    return target


def read_record(output: Path) -> dict:
    """The folder's ``outputs.json`` (what its latest rendering wrote), ``{}`` if none."""
    try:
        record = json.loads((output / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _remove_stale(output: Path, files: list[Path], previous: dict, stream: TextIO) -> None:
    """Delete exports of earlier renderings that this one did not write."""
    current = {f.resolve() for f in files}
    listed = [output / f for f in previous.get("files", []) if isinstance(f, str)]
    candidates = {p for pattern in OWN_FILES for p in output.glob(pattern)}
    candidates |= {p for p in listed if p.resolve().is_relative_to(output.resolve())}
    stale = sorted(p for p in candidates if p.is_file() and p.resolve() not in current)
    for path in stale:
        path.unlink()
    if stale:
        names = ", ".join(p.relative_to(output).as_posix() for p in stale[:5])
        more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
        print(f"note: removed {len(stale)} export(s) of an earlier rendering that no longer "
              f"match the stored results: {names}{more}", file=stream)
