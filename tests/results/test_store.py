"""The SQLite results store: atomic cells, resume state, curves from per-image rows."""

from __future__ import annotations

import math
import sqlite3

import pytest

from jcsr_bench.kit.errors import DataError
from jcsr_bench.results.store import DB_NAME, CellRecord, Store, load_curves, load_rows


def cell(image="a", quality=1, sr="up", status="ok", codec="c", index=0, **values):
    reasons = {k: values.pop(k) for k in list(values) if k.endswith("_why")}
    vals = {k: v for k, v in values.items()}
    return CellRecord("d", image, codec, quality, sr, index, quality, f"key-{image}-{quality}",
                      "ck", "sk", "hash", status, "boom" if status == "error" else None,
                      vals, {k[:-4]: v for k, v in reasons.items()})


def test_record_replace_and_states(tmp_path):
    with Store(tmp_path / DB_NAME) as store:
        run = store.begin_run({"config": {}, "datasets": {"d": {"identity": "x", "images": 2}}})
        store.record(cell(bpp=0.5, psnr=30.0), run)
        store.record(cell(image="b", status="error"), run)
        assert store.states() == {("d", "a", "c", "1", "up"): ("key-a-1", "ok"),
                                  ("d", "b", "c", "1", "up"): ("key-b-1", "error")}
        replacement = cell(bpp=0.25)
        replacement.cell_key = "new-key"
        store.record(replacement, run)  # same names: replaced, old metric rows removed
        store.end_run(run, "finished")
        rows = {r["image"]: r for r in store.rows()}
    assert rows["a"]["values"] == {"bpp": 0.25} and rows["a"]["cell_key"] == "new-key"
    assert rows["b"]["status"] == "error" and rows["b"]["values"] == {}
    assert rows["b"]["error"] == "boom"


def test_a_cell_is_all_or_nothing(tmp_path):
    with Store(tmp_path / DB_NAME) as store:
        run = store.begin_run({})
        store.record(cell(bpp=0.5), run)
        broken = cell(image="z", bpp=object())  # not storable: the transaction rolls back
        with pytest.raises(sqlite3.Error):
            store.record(broken, run)
        assert set(store.states()) == {("d", "a", "c", "1", "up")}
        count = store.conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert count == 1


def test_curves_average_per_image_and_never_hide_gaps(tmp_path):
    db = tmp_path / DB_NAME
    with Store(db) as store:
        run = store.begin_run({"config": {"codecs": ["c2", "c"], "srs": ["up"]},
                               "anchor": "c+up", "datasets": {"d": {"identity": "i"}}})
        for q, (pa, pb) in {2: (30.0, 32.0), 10: (36.0, 38.0)}.items():
            store.record(cell("a", q, bpp=q / 10, psnr=pa, ssim=None, ssim_why="too small"), run)
            store.record(cell("b", q, index=1, bpp=q / 5, psnr=pb, ssim=0.9), run)
        store.record(cell("a", 1, codec="c2", bpp=0.1, psnr=math.inf), run)
        store.record(cell("b", 1, codec="c2", index=1, status="error"), run)
    curves, meta = load_curves(tmp_path)  # a run folder works too
    assert [c.label for c in curves] == ["c2+up", "c+up"]  # the run's order
    c = curves[1]
    assert [p.quality for p in c.points] == [2, 10]  # numeric, not text order
    p2 = c.points[0]
    assert p2.values["psnr"] == pytest.approx(31.0) and p2.values["bpp"] == pytest.approx(0.3)
    assert p2.values["ssim"] is None and "too small" in p2.reasons["ssim"]
    assert "1 of 2" in p2.reasons["ssim"] and p2.images == 2
    failed = curves[0].points[0]
    assert failed.values["psnr"] is None and "failed" in failed.reasons["psnr"]
    assert meta["anchor"] == "c+up" and meta["datasets"] == {"d": {"identity": "i"}}
    assert load_rows(db, cells=[("d", "a", "c", "2", "up")])[0]["values"]["psnr"] == 30.0
    assert curves[0].series("bpp", "psnr") == ([], [])


def test_meta_merges_datasets_and_keeps_the_latest_run(tmp_path):
    with Store(tmp_path / DB_NAME) as store:
        store.begin_run({"date": "2024-01-01T00:00:00+00:00", "device": "cpu",
                         "datasets": {"one": {"identity": "1"}}})
        store.begin_run({"date": "2024-02-01T00:00:00+00:00", "device": "cuda",
                         "datasets": {"two": {"identity": "2"}}})
    _, meta = load_curves(tmp_path / DB_NAME)
    assert meta["device"] == "cuda" and meta["date"].startswith("2024-02")
    assert set(meta["datasets"]) == {"one", "two"}


def test_missing_or_foreign_store_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="run `jcsr-bench run` first"):
        load_curves(tmp_path / "nothing.sqlite")
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO info VALUES ('schema_version', '99')")
    with pytest.raises(DataError, match="schema 99"):
        Store(foreign)


def test_no_wal_or_shm_file_is_left_after_reading_and_writing(tmp_path):
    """A clean exit leaves the store as one file: every connection, the read-only ones
    included, checkpoints and removes ``-wal``/``-shm`` when it is the last to close."""
    with Store(tmp_path / DB_NAME) as store:
        store.record(cell(bpp=0.5), store.begin_run({"config": {}}))
    with Store(tmp_path / DB_NAME, readonly=True) as store:
        assert len(store.rows()) == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM cells")
    load_curves(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]


def test_a_read_only_store_reads_a_path_with_uri_characters(tmp_path):
    folder = tmp_path / "odd ?#% name"
    with Store(folder / DB_NAME) as store:
        store.record(cell(bpp=0.5), store.begin_run({"config": {}}))
    assert len(load_rows(folder)) == 1
