"""The results store: an embedded SQLite database in the run's output folder.

One row per cell (dataset image x codec x quality x SR) with its status, error and the
content keys it was computed from, and one row per (cell, metric). Rows keep the
*names* users typed and the *keys*: a changed weight file gives a new key, so exactly
its cells are recomputed. Each finished cell is written in one transaction (WAL,
synchronous=FULL): killing the process at any moment loses nothing already finished,
and the next run resumes. ``load_curves`` turns the rows into RD curves for reports.
A damaged or foreign file is refused before it is opened for writing
(``check_store_file``), never changed; a full disk while writing is a ``StorageError``.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import sqlite3
import tempfile
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jcsr_bench.kit.disk import writing
from jcsr_bench.kit.errors import DataError
from jcsr_bench.results.curves import Curve, Point

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 1
NAMES = ("dataset", "image", "codec", "quality", "sr")
SQLITE_MAGIC = b"SQLite format 3\x00"
WRITE_REMEDY = ("choose another --output; cells already stored are kept and the next run "
                "resumes")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    dataset TEXT NOT NULL, image TEXT NOT NULL, codec TEXT NOT NULL,
    quality TEXT NOT NULL, sr TEXT NOT NULL,
    image_index INTEGER NOT NULL, quality_index INTEGER NOT NULL,
    cell_key TEXT NOT NULL, codec_key TEXT NOT NULL, sr_key TEXT NOT NULL,
    image_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error TEXT,
    run_id INTEGER REFERENCES runs(id),
    updated TEXT NOT NULL,
    PRIMARY KEY (dataset, image, codec, quality, sr)
);
CREATE TABLE IF NOT EXISTS metrics (
    dataset TEXT NOT NULL, image TEXT NOT NULL, codec TEXT NOT NULL,
    quality TEXT NOT NULL, sr TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    reason TEXT,
    metric_key TEXT NOT NULL,
    PRIMARY KEY (dataset, image, codec, quality, sr, metric)
);
CREATE TABLE IF NOT EXISTS digests (
    dataset TEXT NOT NULL, image TEXT NOT NULL, codec TEXT NOT NULL,
    quality TEXT NOT NULL, sr TEXT NOT NULL,
    stage TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (dataset, image, codec, quality, sr, stage)
);
"""

CellNames = tuple[str, str, str, str, str]  # dataset, image, codec, quality (JSON), sr


def quality_text(quality: Any) -> str:
    """Qualities are stored as JSON text (ints, floats and strings stay distinct)."""
    return json.dumps(quality, sort_keys=True)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class CellRecord:
    """Everything stored for one finished (or failed) cell."""

    dataset: str
    image: str
    codec: str
    quality: Any
    sr: str
    image_index: int
    quality_index: int
    cell_key: str
    codec_key: str
    sr_key: str
    image_hash: str
    status: str = "ok"
    error: str | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    metric_keys: dict[str, str] = field(default_factory=dict)
    #: stage ("payload", "decoded", "output") -> content digest, for exact comparisons
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> CellNames:
        return (self.dataset, self.image, self.codec, quality_text(self.quality), self.sr)


class Store:
    """Read/write access to one results database (created on first write)."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise DataError(f"no results store at {self.path}: run `jcsr-bench run` first")
            if not self.path.with_name(self.path.name + "-wal").exists():  # no run is writing
                check_store_file(self.path)
            # Not mode=ro: a read-only connection can neither checkpoint nor remove the
            # -wal/-shm files it creates, so they would outlive every clean exit.
            # mode=rw still opens a write-protected file read-only; query_only refuses writes.
            uri = f"{self.path.resolve().as_uri()}?mode=rw"
            self.conn = sqlite3.connect(uri, uri=True, timeout=30)
            self.conn.execute("PRAGMA query_only=ON")
        else:
            check_store_file(self.path)  # a damaged file is refused, never changed
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                self.conn.execute(
                    "INSERT OR IGNORE INTO info VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        self._check_schema()

    def _writing(self) -> Any:
        """A full disk (or read-only folder) while writing: ``StorageError`` naming the store;
        the transaction in progress rolls back, finished cells stay."""
        return writing("the results store", self.path, WRITE_REMEDY)

    def _check_schema(self) -> None:
        try:
            row = self.conn.execute(
                "SELECT value FROM info WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path} is not a jcsr-bench results store: {exc}") from exc
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise DataError(
                f"{self.path} has results schema {row[0] if row else '?'}, this jcsr-bench "
                f"reads schema {SCHEMA_VERSION}: use another --output folder"
            )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------
    def begin_run(self, meta: dict[str, Any]) -> int:
        with self._writing(), self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (started, status, meta) VALUES (?, 'running', ?)",
                (meta.get("date") or now_iso(), json.dumps(meta, sort_keys=True, default=str)),
            )
        return int(cur.lastrowid)

    def end_run(self, run_id: int, status: str, extra: dict[str, Any] | None = None) -> None:
        with self._writing(), self.conn:
            if extra:
                (text,) = self.conn.execute("SELECT meta FROM runs WHERE id = ?",
                                            (run_id,)).fetchone()
                meta = {**json.loads(text), **extra}
                self.conn.execute("UPDATE runs SET meta = ? WHERE id = ?",
                                  (json.dumps(meta, sort_keys=True, default=str), run_id))
            self.conn.execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?",
                              (now_iso(), status, run_id))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, started, finished, status, meta FROM runs ORDER BY id"
        ).fetchall()
        return [{"id": r[0], "started": r[1], "finished": r[2], "status": r[3],
                 "meta": json.loads(r[4])} for r in rows]

    # -- cells -----------------------------------------------------------------------
    def states(self) -> dict[CellNames, tuple[str, str]]:
        """``names -> (cell_key, status)`` for every stored cell (one query)."""
        rows = self.conn.execute(
            "SELECT dataset, image, codec, quality, sr, cell_key, status FROM cells"
        )
        return {tuple(r[:5]): (r[5], r[6]) for r in rows}

    def record(self, rec: CellRecord, run_id: int | None) -> None:
        """Store one cell and its metric values atomically (replacing an older version)."""
        names = rec.names
        where = " AND ".join(f"{n} = ?" for n in NAMES)
        with self._writing(), self.conn:
            self.conn.execute(f"DELETE FROM metrics WHERE {where}", names)
            self.conn.execute(f"DELETE FROM digests WHERE {where}", names)
            self.conn.execute(
                "INSERT OR REPLACE INTO cells (dataset, image, codec, quality, sr, image_index, "
                "quality_index, cell_key, codec_key, sr_key, image_hash, status, error, run_id, "
                "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*names, rec.image_index, rec.quality_index, rec.cell_key, rec.codec_key,
                 rec.sr_key, rec.image_hash, rec.status, rec.error, run_id, now_iso()),
            )
            if rec.status == "ok":
                metrics = sorted(set(rec.values) | set(rec.reasons))
                self.conn.executemany(
                    "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*names, m, rec.values.get(m), rec.reasons.get(m),
                      rec.metric_keys.get(m, rec.cell_key)) for m in metrics],
                )
                self.conn.executemany(
                    "INSERT INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*names, stage, value) for stage, value in sorted(rec.digests.items())],
                )

    def rows(self, cells: Iterable[CellNames] | None = None) -> list[dict[str, Any]]:
        """Per-image rows: names, status, error, keys, ``{metric: value}`` / reasons and
        ``{stage: digest}`` of the outputs (empty for stores written before digests)."""
        wanted = set(cells) if cells is not None else None
        out: dict[CellNames, dict[str, Any]] = {}
        for r in self.conn.execute(
            "SELECT dataset, image, codec, quality, sr, image_index, quality_index, status, "
            "error, cell_key, codec_key, sr_key, image_hash FROM cells "
            "ORDER BY dataset, codec, sr, quality_index, image_index"
        ):
            names = tuple(r[:5])
            if wanted is not None and names not in wanted:
                continue
            out[names] = {"dataset": r[0], "image": r[1], "codec": r[2],
                          "quality": json.loads(r[3]), "sr": r[4], "image_index": r[5],
                          "quality_index": r[6], "status": r[7], "error": r[8],
                          "cell_key": r[9], "codec_key": r[10], "sr_key": r[11],
                          "image_hash": r[12], "values": {}, "reasons": {}, "digests": {}}
        for r in self.conn.execute(
            "SELECT dataset, image, codec, quality, sr, metric, value, reason FROM metrics"
        ):
            row = out.get(tuple(r[:5]))
            if row is not None:
                row["values"][r[5]] = r[6]
                if r[7] is not None:
                    row["reasons"][r[5]] = r[7]
        if self._has_table("digests"):
            for r in self.conn.execute(
                "SELECT dataset, image, codec, quality, sr, stage, digest FROM digests"
            ):
                row = out.get(tuple(r[:5]))
                if row is not None:
                    row["digests"][r[5]] = r[6]
        return list(out.values())

    def _has_table(self, name: str) -> bool:
        """A store opened read-only may predate a table added later (e.g. ``digests``)."""
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                 "name = ?", (name,)).fetchone() is not None

    def meta(self) -> dict[str, Any]:
        """The latest run's metadata, with the datasets of every run merged in."""
        runs = self.runs()
        if not runs:
            return {}
        meta = dict(runs[-1]["meta"])
        datasets: dict[str, Any] = {}
        for run in runs:
            datasets.update(run["meta"].get("datasets") or {})
        meta["datasets"] = datasets
        return meta


def check_store_file(path: Path) -> None:
    """Refuse a damaged or foreign results store before opening it for real.

    The check reads the file without changing it: SQLite opens it ``immutable`` (no
    -wal, -shm or -journal is created beside it), or a copy when a -wal from an
    interrupted run is there. A missing file, an empty one or one without tables is a
    new store. Raises ``DataError`` (file, what is wrong, what to do).
    """
    path = Path(path)
    if not path.exists():
        return
    problem = "it is not a file" if not path.is_file() else _store_problem(path)
    if problem:
        raise DataError(
            f"{path} is not a usable jcsr-bench results store ({problem}); it was left "
            f"untouched: move it aside (`mv {shlex.quote(str(path))} "
            f"{shlex.quote(str(path) + '.damaged')}`) or choose another --output folder"
        )


def _store_problem(path: Path) -> str | None:
    if path.stat().st_size == 0:
        return None
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            return "not an SQLite database"
    wal = path.with_name(path.name + "-wal")
    with tempfile.TemporaryDirectory(prefix="jcsr-bench-check-") as tmp:
        if wal.is_file() and wal.stat().st_size:  # check a copy, with the log replayed
            copy = Path(tmp) / path.name
            shutil.copyfile(path, copy)
            shutil.copyfile(wal, Path(tmp) / wal.name)
            uri = f"file:{urllib.parse.quote(str(copy))}"
        else:
            uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True)
            try:
                check = conn.execute("PRAGMA quick_check").fetchall()
                if check != [("ok",)]:
                    return "damaged: " + " ".join(str(check[0][0]).replace("***", "").split())
                tables = {r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                version = conn.execute("SELECT value FROM info WHERE key = 'schema_version'"
                                       ).fetchone() if "info" in tables else None
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            text = " ".join(str(exc).split())
            return "not an SQLite database" if "not a database" in text else \
                f"damaged or truncated: {text}"
    if version is not None and version[0] != str(SCHEMA_VERSION):
        return f"results schema {version[0]}; this jcsr-bench reads schema {SCHEMA_VERSION}"
    if tables and not {"info", "runs", "cells", "metrics"} <= tables:
        return f"an SQLite database of something else: tables {', '.join(sorted(tables))}"
    return None


def _order(values: list[str], preferred: list[str]) -> dict[str, tuple[int, str]]:
    return {v: (preferred.index(v) if v in preferred else len(preferred), v) for v in values}


def _quality_sort(points: list[tuple[Any, int]]) -> list[tuple[Any, int]]:
    numeric = all(isinstance(q, int | float) and not isinstance(q, bool) for q, _ in points)
    return sorted(points, key=(lambda p: p[0]) if numeric else (lambda p: p[1]))


def curves_from_rows(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[Curve]:
    """Average per-image rows into one curve per (dataset, codec, SR).

    A point's value is the mean over its images (CompressAI convention). When any image
    lacks the value (n/a, failed cell) the point's value is None with the reason: a mean
    over a subset would be a silent substitute.
    """
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in rows:
        groups[(row["dataset"], row["codec"], row["sr"])][quality_text(row["quality"])].append(row)
    config = meta.get("config") or {}
    d_order = _order([k[0] for k in groups], list(config.get("datasets") or []))
    c_order = _order([k[1] for k in groups], list(config.get("codecs") or []))
    s_order = _order([k[2] for k in groups], list(config.get("srs") or []))
    curves = []
    for key in sorted(groups, key=lambda k: (d_order[k[0]], c_order[k[1]], s_order[k[2]])):
        by_quality = groups[key]
        qualities = _quality_sort([(json.loads(q), min(r["quality_index"] for r in rs))
                                   for q, rs in by_quality.items()])
        metrics: list[str] = []
        for rows_q in by_quality.values():
            for row in rows_q:
                metrics.extend(m for m in row["values"] if m not in metrics)
        points = [_point(q, by_quality[quality_text(q)], metrics) for q, _ in qualities]
        curves.append(Curve(key[0], key[1], key[2], points))
    return curves


def _point(quality: Any, rows: list[dict[str, Any]], metrics: list[str]) -> Point:
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for metric in metrics:
        got = [r["values"].get(metric) for r in ok]
        present = [v for v in got if v is not None]
        if failed:
            values[metric] = None
            reasons[metric] = (f"{len(failed)} of {len(rows)} image(s) failed "
                               f"(first: {failed[0]['image']}: {failed[0]['error']})")
        elif len(present) < len(rows):
            first = next(r for r in ok if r["values"].get(metric) is None)
            why = first["reasons"].get(metric) or "no value"
            values[metric] = None
            reasons[metric] = (f"n/a for {len(rows) - len(present)} of {len(rows)} image(s) "
                               f"(first: {first['image']}: {why})")
        else:
            values[metric] = math.fsum(present) / len(present)
    return Point(quality, values, reasons, images=len(ok),
                 per_image={r["image"]: dict(r["values"]) for r in ok})


def load_rows(db_path: Path, *, cells: Iterable[CellNames] | None = None) -> list[dict[str, Any]]:
    """Per-image rows of a store (optionally only ``cells``)."""
    with Store(_db_file(db_path), readonly=True) as store:
        return store.rows(cells)


def load_curves(
    db_path: Path, *, cells: Iterable[CellNames] | None = None
) -> tuple[list[Curve], dict[str, Any]]:
    """RD curves and run metadata from a store, for leaderboards, plots and exports.

    ``db_path`` is the database file or a run's output folder. ``meta`` has
    harness_version, plugin_versions, datasets {name: {identity, images}}, device,
    date (run start, ISO), anchor ("codec+sr" or None) and config (the latest run's).
    """
    with Store(_db_file(db_path), readonly=True) as store:
        meta = store.meta()
        rows = store.rows(cells)
    return curves_from_rows(rows, meta), meta


def _db_file(path: Path) -> Path:
    path = Path(path)
    return path / DB_NAME if path.is_dir() else path
