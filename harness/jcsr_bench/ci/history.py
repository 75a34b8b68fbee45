"""Benchmark history over commits: a local SQLite store, a trend chart, a table.

``jcsr-bench history add`` keeps each run's baseline data (one row per commit, in the
order added; adding a commit again replaces its data in place) and derives one row per
commit x dataset x combination x metric: BD-rate and BD-quality against the suite's
anchor, and BD-rate against the previous commit. ``history show`` draws BD-rate vs the
anchor over commits per combination -- what github-action-benchmark's gh-pages chart
gives, without a hosted service.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

from jcsr_bench.ci.baseline import combination_key, git_commit, load_baseline
from jcsr_bench.ci.compare import RATE, bd_pair, judged_metrics, mean_point
from jcsr_bench.ci.plots import plot_history
from jcsr_bench.kit.errors import DataError, JcsrError
from jcsr_bench.kit.identity import safe_filename
from jcsr_bench.report.markdown import escape
from jcsr_bench.results.store import now_iso

DEFAULT_STORE = Path("jcsr-history.sqlite")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_sha TEXT NOT NULL UNIQUE,
    added TEXT NOT NULL,
    anchor TEXT NOT NULL,
    baseline TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    commit_sha TEXT NOT NULL, dataset TEXT NOT NULL, combination TEXT NOT NULL,
    metric TEXT NOT NULL,
    bd_rate_anchor REAL, bd_quality_anchor REAL, bd_rate_previous REAL,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (commit_sha, dataset, combination, metric)
);
"""

__all__ = ["DEFAULT_STORE", "add_run", "entries", "history_markdown", "show"]


HISTORY_TABLES = {"info", "runs", "entries"}


def _foreign(path: Path) -> str | None:
    """Why ``path`` is not a history store (another program's database, a results store),
    read without changing it (``immutable``); ``None`` for a history store or a new file."""
    if not path.exists():
        return None
    if not path.is_file():
        return "it is not a file"
    if path.stat().st_size == 0:
        return None
    with path.open("rb") as handle:
        if handle.read(16) != b"SQLite format 3\0":
            return "not an SQLite database"
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"damaged or not a database: {' '.join(str(exc).split())}"
    if tables and tables != HISTORY_TABLES:
        kind = "a jcsr-bench results store" if "cells" in tables else "another database"
        return f"{kind}: tables {', '.join(sorted(tables))}"
    return None


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    path = Path(path)
    if not create and not path.is_file():
        raise DataError(f"no history store at {path}: add a run first with `jcsr-bench "
                        "history add --results DIR`")
    problem = _foreign(path)
    if problem:
        raise DataError(f"{path} is not a jcsr-bench history store ({problem}); it was left "
                        "untouched: give another --store")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO info VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        (version,) = conn.execute(
            "SELECT value FROM info WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DataError(f"{path} is not a jcsr-bench history store: {exc}") from exc
    if int(version) != SCHEMA_VERSION:
        conn.close()
        raise DataError(f"{path} has history schema {version}, this jcsr-bench reads "
                        f"{SCHEMA_VERSION}: use another --store")
    return conn


def _curve_series(combo: dict[str, Any], metric: str) -> tuple[list[float], list[float]]:
    rates, quals = [], []
    for point in combo["points"]:
        r, q = mean_point(point, RATE)[0], mean_point(point, metric)[0]
        if r is not None and q is not None:
            rates.append(r)
            quals.append(q)
    return rates, quals


def _entries_for(data: dict[str, Any], anchor: str, previous: dict[str, Any] | None
                 ) -> list[tuple]:
    """Rows (dataset, combination, metric, bd vs anchor, bd-q vs anchor, bd vs prev, note)."""
    rows = []
    combos = data["combinations"]
    for combo in combos.values():
        label = f"{combo['codec']}+{combo['sr']}"
        anchor_combo = combos.get(f"{combo['dataset']}/{anchor}")
        prev_combo = (previous or {}).get("combinations", {}).get(
            combination_key(combo["dataset"], combo["codec"], combo["sr"]))
        metrics = judged_metrics(combo, anchor_combo or combo)
        for metric in metrics:
            series = _curve_series(combo, metric)
            notes = []
            rate = quality = prev = None
            if anchor_combo is None:
                notes.append(f"anchor {anchor} not in this run")
            else:
                rate, quality, note = bd_pair(_curve_series(anchor_combo, metric), series,
                                              "pchip", names=("anchor", label))
                notes += [note] if note else []
            if prev_combo is not None and metric in judged_metrics(prev_combo, combo):
                prev, _, note = bd_pair(_curve_series(prev_combo, metric), series, "pchip",
                                        names=("previous commit", "this commit"))
                notes += [f"vs previous: {note}"] if note else []
            rows.append((combo["dataset"], label, metric, rate, quality, prev,
                         "; ".join(notes)))
    return rows


def _rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every entry in commit order (a replaced run changes its successor)."""
    previous = None
    conn.execute("DELETE FROM entries")
    for sha, anchor, text in conn.execute(
            "SELECT commit_sha, anchor, baseline FROM runs ORDER BY seq").fetchall():
        data = json.loads(text)
        conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(sha, *row) for row in _entries_for(data, anchor, previous)])
        previous = data


def add_run(results: Path, *, store: Path = DEFAULT_STORE, commit: str | None = None,
            anchor: str | None = None) -> tuple[str, int]:
    """Append (or replace) one run; returns (commit, entries written for it)."""
    data = load_baseline(results)
    commit = commit or data.get("git_commit") or git_commit()
    if not commit:
        raise JcsrError(f"{results}: no git commit known for this run: give --commit SHA")
    anchor = anchor or (data.get("run") or {}).get("anchor")
    if not anchor:
        raise JcsrError(f"{results}: the run has no anchor (its suite names none): give "
                        "--anchor CODEC+SR")
    conn = _connect(store, create=True)
    try:
        with conn:
            conn.execute(
                "INSERT INTO runs (commit_sha, added, anchor, baseline) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(commit_sha) DO UPDATE SET added = excluded.added, "
                "anchor = excluded.anchor, baseline = excluded.baseline",
                (commit, now_iso(), anchor, json.dumps(data, sort_keys=True)))
            _rebuild(conn)
        (count,) = conn.execute("SELECT COUNT(*) FROM entries WHERE commit_sha = ?",
                                (commit,)).fetchone()
    finally:
        conn.close()
    return commit, int(count)


def entries(store: Path = DEFAULT_STORE) -> tuple[list[str], list[dict[str, Any]], str]:
    """(commits oldest first, entry rows, anchor of the latest run)."""
    conn = _connect(store, create=False)
    try:
        runs = conn.execute("SELECT commit_sha, anchor FROM runs ORDER BY seq").fetchall()
        rows = conn.execute(
            "SELECT e.commit_sha, dataset, combination, metric, bd_rate_anchor, "
            "bd_quality_anchor, bd_rate_previous, note FROM entries e JOIN runs r "
            "ON r.commit_sha = e.commit_sha ORDER BY r.seq, dataset, combination, metric"
        ).fetchall()
    finally:
        conn.close()
    if not runs:
        raise DataError(f"history store {store} is empty: add a run with `jcsr-bench "
                        "history add --results DIR`")
    keys = ("commit", "dataset", "combination", "metric", "bd_rate_anchor",
            "bd_quality_anchor", "bd_rate_previous", "note")
    return [r[0] for r in runs], [dict(zip(keys, r)) for r in rows], runs[-1][1]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


#: What the number in parentheses is: a BD-rate of its own, not a difference.
PREVIOUS_TEXT = ("in parentheses: BD-rate vs the previous commit's curve (not the "
                 "difference of the two numbers shown)")


def never_defined(rows: list[dict[str, Any]], metric: str, dataset: str,
                  commits: list[str]) -> dict[str, str]:
    """Combinations whose BD-rate vs the anchor is n/a at every commit -> the reason
    (the latest commit's note)."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["metric"] == metric and row["dataset"] == dataset:
            by_label[row["combination"]].append(row)
    return {label: (got[-1]["note"].split("; vs previous:")[0] or "n/a")
            for label, got in by_label.items()
            if len(got) == len(commits) and all(r["bd_rate_anchor"] is None for r in got)}


def history_markdown(commits: list[str], rows: list[dict[str, Any]], metric: str) -> str:
    """Per dataset: one row per commit, one column per combination: the BD-rate vs the
    anchor, and in parentheses the BD-rate vs the previous commit, in percent; under the
    table, why a combination is n/a at every commit."""
    from tabulate import tabulate

    out = []
    by_dataset: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        if row["metric"] == metric:
            by_dataset[row["dataset"]][(row["commit"], row["combination"])] = row
    for dataset, cells in by_dataset.items():
        labels = list(dict.fromkeys(label for _, label in cells))
        table = []
        for commit in commits:
            line = [f"`{commit[:12]}`"]
            for label in labels:
                row = cells.get((commit, label))
                line.append("-" if row is None else
                            f"{_fmt(row['bd_rate_anchor'])} ({_fmt(row['bd_rate_previous'])})")
            table.append(line)
        out += [f"### {escape(dataset)}: BD-rate ({escape(metric)}) vs anchor, %; "
                f"{PREVIOUS_TEXT}", "",
                tabulate(table, headers=["commit", *map(escape, labels)], tablefmt="github",
                         disable_numparse=True), ""]
        never = never_defined(rows, metric, dataset, commits)
        out += [f"- {escape(label)}: n/a at every commit: {escape(why)}"
                for label, why in never.items()]
        out += [""] if never else []
    if not out:
        raise JcsrError(f"no history entries for metric {metric!r}")
    return "\n".join(out)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def show(store: Path = DEFAULT_STORE, *, metric: str = "psnr-rgb",
         out_dir: Path = Path("jcsr-history")) -> tuple[str, list[Path]]:
    """The Markdown table and the chart files (PNG + SVG per dataset)."""
    commits, rows, anchor = entries(store)
    text = history_markdown(commits, rows, metric)
    files: list[Path] = []
    datasets = list(dict.fromkeys(r["dataset"] for r in rows if r["metric"] == metric))
    for dataset in datasets:
        series: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
        never = never_defined(rows, metric, dataset, commits)
        for r in rows:
            if r["dataset"] == dataset and r["metric"] == metric and r["combination"] != anchor:
                label = r["combination"]
                if label in never:  # no line to draw: the legend says why
                    label = f"{label}: n/a at every commit ({_short(never[label])})"
                series[label].append((r["commit"], r["bd_rate_anchor"]))
        base = Path(out_dir) / f"history-{safe_filename(dataset)}-{safe_filename(metric)}"
        files += plot_history(series, commits, base, anchor=anchor,
                              title=f"{dataset}: BD-rate ({metric}) over commits")
    return text, files
