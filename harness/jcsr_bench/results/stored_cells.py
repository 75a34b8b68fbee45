"""Stored cells with their keys: what recomputing a cell's images needs from the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jcsr_bench.kit.errors import DataError
from jcsr_bench.results.store import DB_NAME, Store, quality_text


@dataclass
class StoredCell:
    """One stored cell as ``visual`` and the HTML report need it: names, keys, scores."""

    dataset: str
    image: str
    codec: str
    quality: Any
    sr: str
    status: str
    error: str | None
    codec_key: str
    sr_key: str
    image_hash: str
    run_id: int | None
    values: dict[str, float | None]
    reasons: dict[str, str]


def read_cells(results: Path) -> tuple[list[StoredCell], dict[int, dict], dict]:
    """Every stored cell with its keys, each run's metadata, and the merged metadata."""
    path = Path(results)
    db = path / DB_NAME if path.is_dir() else path
    if not db.is_file():
        raise DataError(f"no results store at {db}: run `jcsr-bench run --output {path}` "
                        "first, or point --results at a run's output folder")
    with Store(db, readonly=True) as store:
        runs = {r["id"]: r["meta"] for r in store.runs()}
        meta = store.meta()
        rows = {(r["dataset"], r["image"], r["codec"], quality_text(r["quality"]), r["sr"]): r
                for r in store.rows()}
        cells = []
        for r in store.conn.execute(
            "SELECT dataset, image, codec, quality, sr, status, error, codec_key, sr_key, "
            "image_hash, run_id FROM cells ORDER BY image_index, quality_index"
        ):
            stored = rows.get(tuple(r[:5]), {})
            cells.append(StoredCell(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7],
                               r[8], r[9], r[10], stored.get("values", {}),
                               stored.get("reasons", {})))
    return cells, runs, meta
