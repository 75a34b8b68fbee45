"""What a results folder's reports cover, and which anchor they compare against.

Every report of a results folder — ``leaderboard.md``, ``results.csv``, ``json/``,
``plots/`` and ``jcsr-bench leaderboard --results`` — shows the same thing: **every
combination stored in its results.sqlite, on each dataset's images as of the latest
run over the whole dataset**. Runs into one folder accumulate; a later ``--limit N`` or
``--codec X`` run adds what it computed and hides nothing. Every number in a dataset's
table is a mean over exactly the images its heading counts: a point that lacks some of
them (a ``--limit`` run, an interrupted run, a failed image) is n/a with the reason,
never a mean over fewer images. Cells of images that left the dataset (a bad file
later skipped with ``skip_bad``, a file deleted) stay in the store but are not shown;
the header names them. When only ``--limit`` runs were made, the union of their images
is shown, and the header says it is not the whole dataset.

The anchor: ``--anchor`` given to ``leaderboard``; else the anchor recorded by the
latest run that had one (``run --anchor`` or its suite's); else the first combination.
The header always says which, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.report.text import count
from jcsr_bench.results.curves import Curve
from jcsr_bench.results.store import DB_NAME, Store, curves_from_rows, quality_text

__all__ = ["AnchorChoice", "FolderView", "choose_anchor", "load_view"]

SOURCE_OPTION = "--anchor"  # run meta "anchor_source" values (engine)
SOURCE_SUITE = "suite"


@dataclass(frozen=True)
class AnchorChoice:
    """The anchor combination and the reason it was chosen (said in the header)."""

    label: str
    note: str
    fallback: bool = False  # a recorded anchor had no results: the first one instead

    @property
    def pair(self) -> tuple[str, str]:
        codec, _, sr = self.label.partition("+")
        return codec, sr


@dataclass
class FolderView:
    """A results folder as its reports show it (module doc)."""

    rows: list[dict[str, Any]]  # per-image rows shown (results.csv)
    curves: list[Curve]
    meta: dict[str, Any]  # render metadata: true dataset counts, merged "skipped"
    anchor: AnchorChoice | None
    hidden: dict[str, list[str]] = field(default_factory=dict)  # dataset -> images

    def summary(self) -> str:
        """One line for the run's output: what the folder's reports cover."""
        info = self.meta.get("datasets") or {}
        parts = [f"{name} ({count(info[name]['images'], 'image')})" for name in info
                 if any(c.dataset == name for c in self.curves)]
        combos = len({c.label for c in self.curves})
        return (f"reports cover everything stored in this folder: "
                f"{count(combos, 'combination')} on {', '.join(parts) or 'no dataset'}")


def load_view(results: str | Path, anchor: str | None = None) -> FolderView:
    """Read a results folder (or its ``results.sqlite``) as its reports show it."""
    path = Path(results)
    db = path / DB_NAME if path.is_dir() else path
    with Store(db, readonly=True) as store:
        runs = store.runs()
        meta = store.meta()
        rows = store.rows()
        computed_by = {tuple(r[:5]): r[5] for r in store.conn.execute(
            "SELECT dataset, image, codec, quality, sr, run_id FROM cells")}
    covered = _coverage(runs, rows)
    shown, hidden = [], {}
    for row in rows:
        images = covered[row["dataset"]]["names"]
        if row["image"] in images:
            shown.append(row)
        else:
            hidden.setdefault(row["dataset"], []).append(row["image"])
    hidden = {d: sorted(set(names)) for d, names in hidden.items()}
    curves = curves_from_rows(shown, meta)
    _require_every_image(curves, shown, covered)
    meta["datasets"] = {
        name: {"identity": c["identity"], "images": len(c["names"]), "limit": c["limit"],
               "hidden": hidden.get(name, [])}
        for name, c in covered.items()
    }
    meta["skipped"] = _skipped(runs)
    ids = {computed_by.get((r["dataset"], r["image"], r["codec"], quality_text(r["quality"]),
                            r["sr"])) for r in shown}
    meta.update(_provenance([run for run in runs if run["id"] in ids] or runs[-1:]))
    choice = choose_anchor(curves, anchor, runs) if curves else None
    return FolderView(shown, curves, meta, choice, hidden)


# -- coverage -----------------------------------------------------------------------------


def _coverage(runs: Sequence[dict], rows: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Per dataset: the images shown, its identity and the ``--limit`` when not whole."""
    covered: dict[str, dict[str, Any]] = {}
    for run in runs:
        for name, info in (run["meta"].get("datasets") or {}).items():
            names = info.get("names")
            entry = covered.get(name)
            whole = info.get("limit") is None
            if names is None:  # a store written before runs recorded image names
                covered[name] = {"names": None, "identity": info.get("identity"),
                                 "limit": None, "whole": True}
            elif whole or entry is None:
                covered[name] = {"names": set(names), "identity": info.get("identity"),
                                 "limit": None if whole else info.get("limit"),
                                 "whole": whole}
            elif entry["names"] is not None and not entry["whole"]:  # limited runs: union
                entry["names"] |= set(names)
                entry["limit"] = max(entry["limit"], info.get("limit"))
    stored: dict[str, set[str]] = {}
    for row in rows:
        stored.setdefault(row["dataset"], set()).add(row["image"])
    for name, entry in covered.items():
        if entry["names"] is None:
            entry["names"] = stored.get(name, set())
    for name, images in stored.items():
        covered.setdefault(name, {"names": images, "identity": "unknown", "limit": None})
    return covered


def _require_every_image(curves: list[Curve], rows: Sequence[dict],
                         covered: dict[str, dict[str, Any]]) -> None:
    """Points that lack some of the dataset's images become n/a (never a subset mean)."""
    present: dict[tuple[str, str, str, str], set[str]] = {}
    for row in rows:
        key = (row["dataset"], row["codec"], row["sr"], quality_text(row["quality"]))
        present.setdefault(key, set()).add(row["image"])
    for curve in curves:
        wanted = covered[curve.dataset]["names"]
        for point in curve.points:
            have = present.get((curve.dataset, curve.codec, curve.sr,
                                quality_text(point.quality)), set())
            if have >= wanted:
                continue
            missing = sorted(wanted - have)
            shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
            why = (f"computed on {len(have)} of the dataset's {count(len(wanted), 'image')} "
                   f"(missing: {shown}); run it without --limit to complete it")
            for metric in point.values:
                point.values[metric] = None
                point.reasons[metric] = why
            point.values.setdefault("bpp", None)
            point.reasons.setdefault("bpp", why)


def _provenance(runs: Sequence[dict]) -> dict[str, Any]:
    """Device, date and versions of the runs that computed the shown results.

    One value when they agree; otherwise each value with the runs it comes from, and
    the dates as a range — never just the latest run's, which may have computed nothing.
    """
    if not runs:
        return {}

    def merged(values: dict[int, str]) -> str:
        by_value: dict[str, list[int]] = {}
        for run_id, value in values.items():
            by_value.setdefault(value, []).append(run_id)
        if len(by_value) == 1:
            return next(iter(by_value))
        return "; ".join(f"{v} ({'run' if len(ids) == 1 else 'runs'} "
                         f"{', '.join(map(str, ids))})" for v, ids in by_value.items())

    out: dict[str, Any] = {
        key: merged({r["id"]: str(r["meta"].get(key, "unknown")) for r in runs})
        for key in ("device", "harness_version")
    }
    dates = sorted(str(r["meta"].get("date") or r["started"]) for r in runs)
    out["date"] = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    plugins: dict[str, dict[int, str]] = {}
    for r in runs:
        for name, version in (r["meta"].get("plugin_versions") or {}).items():
            plugins.setdefault(name, {})[r["id"]] = str(version)
    out["plugin_versions"] = {name: merged(v) for name, v in plugins.items()}
    return out


# -- what was not evaluated ---------------------------------------------------------------

_CONFIG_KEYS = {"codec": "codecs", "sr": "srs", "dataset": "datasets", "metric": "metrics"}


def _skipped(runs: Sequence[dict]) -> list[dict[str, Any]]:
    """Components left out, each as the latest run that selected it left it (merged)."""
    latest: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        meta = run["meta"]
        config = meta.get("config") or {}
        for kind, key in _CONFIG_KEYS.items():
            for name in config.get(key) or []:
                latest.pop((kind, name), None)  # evaluated by this later run
        mine: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item in meta.get("skipped") or []:
            mine.setdefault((item.get("kind", "?"), item.get("name", "?")), []).append(item)
        latest.update(mine)
    return [item for items in latest.values() for item in items]


# -- anchor --------------------------------------------------------------------------------


def choose_anchor(curves: Sequence[Curve], requested: str | None,
                  runs: Sequence[dict]) -> AnchorChoice:
    """The anchor and why (module doc); ``requested`` must be in the results."""
    from jcsr_bench.results.labels import parse_label

    labels = list(dict.fromkeys(c.label for c in curves))
    if requested:
        parse_label(requested)
        if requested not in labels:
            raise JcsrError(f"anchor {requested!r} is not in the results."
                            + did_you_mean(requested, labels))
        return AnchorChoice(requested, "chosen with --anchor")
    first = labels[0]
    for run in reversed(runs):
        meta = run["meta"]
        label = meta.get("anchor")
        if not label:
            continue
        suite = (meta.get("config") or {}).get("suite")
        source = meta.get("anchor_source")
        if source == SOURCE_OPTION:
            why = "given to run --anchor"
        elif source == SOURCE_SUITE:
            why = f"the anchor of suite {suite}"
        else:  # recorded before runs said where the anchor came from
            why = f"the run's anchor, suite {suite}" if suite else "the run's anchor"
        if label in labels:
            return AnchorChoice(label, why)
        return AnchorChoice(first, f"{why} is {label}, which has no results here: the first "
                                   "combination in the results instead; choose one with "
                                   "--anchor CODEC+SR", fallback=True)
    suite = ((runs[-1]["meta"].get("config") or {}).get("suite")) if runs else None
    why = (f"suite {suite} names no anchor" if suite else
           "the runs named their combinations (--codec/--sr) without --anchor")
    return AnchorChoice(first, f"no anchor given and {why}: the first combination in the "
                               "results; choose one with --anchor CODEC+SR", fallback=True)
