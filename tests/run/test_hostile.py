"""Hostile states: a damaged store, a wrong --output, unusable or full disks, an untrusted
registry. Each ends in one clear line (exit 2 from the CLI), never a traceback, and
nothing already stored is lost or changed."""

from __future__ import annotations

import errno
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from fakes import ENCODES, go, make_registry

from jcsr_bench.cli.main import main
from jcsr_bench.kit.errors import DataError, RegistryError, StorageError
from jcsr_bench.plugin.registry import MAX_VALUES, load_registry
from jcsr_bench.results.store import DB_NAME, load_rows

QUICK_RUN = ["run", "--dataset", "samples", "--codec", "jpeg", "--sr", "bicubic", "--limit",
             "1", "--qualities", "10"]  # refused before anything is built in these tests


def cli_error(capsys, *argv: str) -> str:
    """Run the CLI in-process; it must return 2 with exactly one line on stderr."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("jcsr-bench: error: "), err
    assert "Traceback" not in err
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    """The store and anything SQLite would put beside it (-wal, -shm, -journal)."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob(DB_NAME + "*"))}


def values(db: Path) -> dict:
    return {(r["dataset"], r["image"], r["codec"], str(r["quality"]), r["sr"]):
            (r["status"], {k: v for k, v in r["values"].items() if not k.endswith("_s")})
            for r in load_rows(db)}


@pytest.fixture
def registry(tmp_path):
    ENCODES.clear()
    return make_registry(tmp_path / "reg")


# -- 1. a damaged results store ----------------------------------------------------------
def _damaged(kind: str, registry, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    if kind == "not a database":
        out.mkdir()
        (out / DB_NAME).write_bytes(os.urandom(5000))
    else:
        go(registry, tmp_path, codecs=["fa"])  # a real store, then damaged
        conn = sqlite3.connect(out / DB_NAME)  # the last writer to close folds the log in
        conn.execute("SELECT COUNT(*) FROM cells").fetchone()
        conn.close()
        assert sorted(p.name for p in out.glob(DB_NAME + "*")) == [DB_NAME]
        data = (out / DB_NAME).read_bytes()
        if kind == "truncated":
            (out / DB_NAME).write_bytes(data[: len(data) // 2])
        else:  # a page in the middle overwritten with garbage
            page = len(data) // 4096 // 2 * 4096
            (out / DB_NAME).write_bytes(data[:page] + b"\xff" * 4096 + data[page + 4096:])
    return out


@pytest.mark.parametrize("kind", ["not a database", "truncated", "garbled page"])
def test_run_refuses_a_damaged_store_and_leaves_it_byte_identical(kind, registry, tmp_path,
                                                                   capsys):
    out = _damaged(kind, registry, tmp_path)
    before = snapshot(out)
    err = cli_error(capsys, *QUICK_RUN, "--output", str(out))
    assert f"{out / DB_NAME} is not a usable jcsr-bench results store" in err
    assert "move it aside" in err and "choose another --output" in err
    assert snapshot(out) == before  # same bytes, and no -wal, -shm or -journal beside it
    assert cli_error(capsys, "leaderboard", "--results", str(out)) == err  # the same words
    assert snapshot(out) == before
    ENCODES.clear()
    with pytest.raises(DataError, match="not a usable jcsr-bench results store"):
        go(registry, tmp_path, codecs=["fa"], dry_run=True)
    assert not ENCODES and snapshot(out) == before


def test_a_store_of_another_program_is_refused_unchanged(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with sqlite3.connect(out / DB_NAME) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    before = snapshot(out)
    err = cli_error(capsys, *QUICK_RUN, "--output", str(out))
    assert "an SQLite database of something else: tables contacts" in err
    assert snapshot(out) == before


@pytest.mark.slow
def test_an_interrupted_store_with_its_log_still_resumes(registry, tmp_path):
    """A -wal left by a killed run is not damage: the check reads a copy, the run resumes."""
    first = go(registry, tmp_path, codecs=["fa"])
    db = first.db_path
    keep = sqlite3.connect(db)  # a second connection keeps the log from being folded in
    keep.execute("PRAGMA journal_mode=WAL")
    with sqlite3.connect(db) as writer:
        writer.execute("UPDATE cells SET status = 'error', error = 'x' WHERE image = "
                       "(SELECT MIN(image) FROM cells)")
    assert (db.parent / (DB_NAME + "-wal")).stat().st_size > 0
    again = go(registry, tmp_path, codecs=["fa"])
    keep.close()
    assert again.exit_code == 0 and again.computed == 4 and again.cached == 8


# -- 2. --output naming a file -----------------------------------------------------------
def test_output_naming_a_file_is_one_clear_error(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    err = cli_error(capsys, *QUICK_RUN, "--output", str(target))
    assert err == (f"jcsr-bench: error: --output {target} is an existing file, not a folder: "
                   "choose another --output (or move the file aside)")
    err = cli_error(capsys, *QUICK_RUN, "--dry-run", "--output", str(target / "sub"))
    assert f"--output {target / 'sub'} is inside {target}, a file" in err
    assert target.read_text() == "mine"


# -- 3. unusable cache folders and full disks --------------------------------------------
def test_a_file_in_place_of_the_cache_stops_before_any_work(registry, tmp_path, capsys,
                                                            monkeypatch):
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match=f"the codec cache {blocker} is an existing file"):
        go(registry, tmp_path, cache_root=blocker)
    assert not ENCODES and not (tmp_path / "out").exists()
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(blocker))
    err = cli_error(capsys, *QUICK_RUN, "--output", str(tmp_path / "cli"))
    assert f"the codec cache {blocker / 'cells'} is inside {blocker}, a file" in err


@pytest.mark.parametrize("code, words", [(errno.EROFS, "not writable (Read-only file system)"),
                                         (errno.EACCES, "not writable (Permission denied)"),
                                         (errno.ENOSPC, "the disk is full")])
def test_an_unwritable_or_full_cache_stops_up_front(code, words, registry, tmp_path,
                                                    monkeypatch):
    import jcsr_bench.kit.disk as disk

    cache = (tmp_path / "cache").resolve()
    real = disk.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if Path(kwargs["dir"]) == cache:
            raise OSError(code, os.strerror(code), str(cache / ".probe"))
        return real(*args, **kwargs)

    cache.mkdir()
    monkeypatch.setattr(disk.tempfile, "mkstemp", mkstemp)
    with pytest.raises(StorageError) as info:
        go(registry, tmp_path, cache_root=cache)
    assert str(info.value).startswith(f"the codec cache {cache}: {words}")
    assert "JCSR_BENCH_CACHE" in str(info.value)
    assert not ENCODES and not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_stops_up_front(registry, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="not writable"):
            go(registry, tmp_path, cache_root=cache)
    finally:
        cache.chmod(0o755)
    assert not ENCODES


def _fail_after(calls: int, make_error):
    count = {"n": 0}

    def check():
        count["n"] += 1
        if count["n"] > calls:
            raise make_error()
    return check


@pytest.mark.slow
def test_disk_full_in_the_cache_mid_run_stops_keeps_and_resumes(registry, tmp_path,
                                                                monkeypatch, capsys):
    import jcsr_bench.run.cache as cache_module

    real = cache_module.atomic_write
    check = _fail_after(3 * 3, lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    def atomic_write(path, data):  # 3 files per codec output: the 4th output hits a full disk
        check()
        real(path, data)

    monkeypatch.setattr(cache_module, "atomic_write", atomic_write)
    cache = tmp_path / "cache"
    with pytest.raises(StorageError) as info:
        go(registry, tmp_path, cache_root=cache)
    assert str(info.value).startswith(f"the codec cache {cache}: the disk is full")
    db = tmp_path / "out" / DB_NAME
    stored = values(db)
    assert len(stored) == 3 * 2  # 3 codec outputs x 2 SR models, all finished
    assert {status for status, _ in stored.values()} == {"ok"}  # none marked failed
    monkeypatch.setattr(cache_module, "atomic_write", real)  # space is back
    resumed = go(registry, tmp_path, cache_root=cache)
    assert resumed.exit_code == 0 and resumed.computed == 24 - 6 and resumed.cached == 6
    assert {k: values(db)[k] for k in stored} == stored  # finished cells untouched
    reference = go(registry, tmp_path, out="reference", cache_root=tmp_path / "fresh")
    assert values(db) == values(reference.db_path)
    runs = sqlite3.connect(db).execute("SELECT status FROM runs ORDER BY id").fetchall()
    assert [r[0] for r in runs] == ["interrupted", "finished"]


def test_disk_full_in_the_lr_cache_mid_run_stops_keeps_and_resumes(registry, tmp_path,
                                                                   monkeypatch):
    import jcsr_bench.imaging.lr as lr_module
    from jcsr_bench.kit.atomic import atomic_write_with

    real = lr_module.save_image
    check = _fail_after(1, lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    def save_image(image, path, compress_level=1):  # the 2nd LR image meets a full disk
        def write(handle):
            check()  # raised inside the write, as a full disk does: no file name
            handle.write(b"unused")
        atomic_write_with(Path(path), write)
        return real(image, path, compress_level)

    monkeypatch.setattr(lr_module, "save_image", save_image)
    with pytest.raises(StorageError) as info:
        go(registry, tmp_path)
    folder = lr_module.lr_cache_dir()
    assert str(info.value).startswith(f"writing to {folder}/")
    assert "the disk is full" in str(info.value)
    db = tmp_path / "out" / DB_NAME
    stored = values(db)
    assert len(stored) == 8 and {s for s, _ in stored.values()} == {"ok"}  # the 1st image
    monkeypatch.setattr(lr_module, "save_image", real)
    resumed = go(registry, tmp_path)
    assert resumed.exit_code == 0 and resumed.computed == 16 and resumed.cached == 8


@pytest.mark.slow
def test_disk_full_in_the_store_mid_run_stops_keeps_and_resumes(registry, tmp_path,
                                                                monkeypatch):
    """SQLite's own SQLITE_FULL (max_page_count caps the file) while recording cells."""
    import jcsr_bench.results.store as store_module

    real_connect = sqlite3.connect
    cap = {"pages": None}

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        if cap["pages"] is not None and not kwargs.get("uri"):
            conn.execute(f"PRAGMA max_page_count = {cap['pages']}")
        return conn

    reference = go(registry, tmp_path, out="reference")
    size = real_connect(reference.db_path).execute("PRAGMA page_count").fetchone()[0]
    cap["pages"] = size - 4  # the last cells do not fit
    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    with pytest.raises(StorageError) as info:
        go(registry, tmp_path)
    db = tmp_path / "out" / DB_NAME
    assert str(info.value).startswith(f"the results store {db}: the disk is full")
    assert "choose another --output" in str(info.value)
    cap["pages"] = None  # space is back
    stored = values(db)
    assert 0 < len(stored) < 24 and {s for s, _ in stored.values()} == {"ok"}
    resumed = go(registry, tmp_path)
    assert resumed.exit_code == 0 and resumed.computed == 24 - len(stored)
    assert values(db) == values(reference.db_path)


def test_disk_full_anywhere_else_is_one_line_from_the_cli(tmp_path, capsys, monkeypatch):
    import jcsr_bench.cli.listing as listing

    def full(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x" / "f.bin"))

    monkeypatch.setattr(listing, "handle", full)
    err = cli_error(capsys, "list")
    assert f"writing to {tmp_path / 'x'}: the disk is full" in err


TMPFS_SCRIPT = """
set -u
mount -t tmpfs -o size=$SIZE tmpfs "$D/disk" || exit 77
run() {{ {python} -m jcsr_bench.cli.main run --registry "$D/reg.yaml" --dataset noise \\
        --codec png --sr none --scale 1 --output "$OUT" --device cpu; }}
run > "$D/first.out" 2> "$D/first.err"; echo $? > "$D/first.rc"
cp "$OUT/results.sqlite" "$D/after-full.sqlite"
if [ -s "$OUT/results.sqlite-wal" ]; then
  cp "$OUT/results.sqlite-wal" "$D/after-full.sqlite-wal"; fi
mount -o remount,size=64m "$D/disk"
run > "$D/second.out" 2> "$D/second.err"; echo $? > "$D/second.rc"
cp "$OUT/results.sqlite" "$D/resumed.sqlite"
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a tmpfs")
@pytest.mark.parametrize("full, size", [("the codec cache", "640k"),
                                        ("the results store", "160k")])
@pytest.mark.slow
def test_a_real_full_disk_stops_cleanly_and_resumes_to_the_same_results(full, size, tmp_path):
    """A small tmpfs (in a private mount namespace) fills up mid-run, then grows: with
    only the codec cache on it, or only the output folder (SQLite meets the full disk)."""
    import numpy as np
    from PIL import Image

    images = tmp_path / "noise"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):  # incompressible: ~50 KB per PNG, payload and decoded copy per cell
        Image.fromarray(rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)).save(
            images / f"n{i}.png")
    (tmp_path / "reg.yaml").write_text(f"datasets:\n  noise: {{type: folder, root: {images}}}\n")
    (tmp_path / "disk").mkdir()
    script = TMPFS_SCRIPT.format(python=sys.executable)
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    env = {k: v for k, v in os.environ.items() if k != "JCSR_BENCH_LOAD_PLUGINS"}
    on_disk = {"cache": tmp_path / "disk" / "cache", "out": tmp_path / "out"}
    if full == "the results store":
        on_disk = {"cache": tmp_path / "cache", "out": tmp_path / "disk" / "out"}
    env.update(D=str(tmp_path), SIZE=size, JCSR_BENCH_LOAD_PLUGINS="",
               JCSR_BENCH_CACHE=str(on_disk["cache"]), OUT=str(on_disk["out"]))
    done = subprocess.run([*unshare, "sh", "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode == 77 or not (tmp_path / "first.rc").exists():
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[-200:]}")
    first_err = (tmp_path / "first.err").read_text().strip()
    assert (tmp_path / "first.rc").read_text().strip() == "2", first_err
    assert "Traceback" not in first_err and len(first_err.splitlines()) == 1, first_err
    where = on_disk["cache"] / "cells" if full == "the codec cache" else on_disk["out"] / DB_NAME
    assert f"{full} {where}: the disk is full" in first_err
    partial = values(tmp_path / "after-full.sqlite")
    assert 0 < len(partial) < 8 and {s for s, _ in partial.values()} == {"ok"}
    assert (tmp_path / "second.rc").read_text().strip() == "0", \
        (tmp_path / "second.err").read_text()
    assert f"8 cells: {8 - len(partial)} computed, {len(partial)} already stored" in \
        (tmp_path / "second.out").read_text()
    resumed = values(tmp_path / "resumed.sqlite")
    assert {k: resumed[k] for k in partial} == partial
    reference = main(["run", "--registry", str(tmp_path / "reg.yaml"), "--dataset", "noise",
                      "--codec", "png", "--sr", "none", "--scale", "1", "--output",
                      str(tmp_path / "reference"), "--device", "cpu"])
    assert reference == 0 and resumed == values(tmp_path / "reference" / DB_NAME)


# -- 4. an untrusted registry -----------------------------------------------------------
def alias_bomb(levels: int) -> str:
    lines = ['codecs:', '  boom:', '    type: pillow', '    format: JPEG',
             '    qualities: &l0 [1, 2, 3, 4, 5, 6, 7, 8, 9]']
    lines += [f'    x{i}: &l{i} [' + ", ".join([f"*l{i - 1}"] * 9) + "]"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_in_the_current_folder_is_refused_quickly(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jcsr-bench.yaml").write_text(alias_bomb(9))
    started = time.perf_counter()
    err = cli_error(capsys, "list", "codecs")
    assert time.perf_counter() - started < 5
    # 9 ** 5 leaves at x5 (line 10) are the first value past the budget
    assert err == (f"jcsr-bench: error: {tmp_path / 'jcsr-bench.yaml'}:10: this value expands "
                   f"to more than {MAX_VALUES:,} values through YAML aliases (*name), the most "
                   "a registry may hold (an alias bomb?); write the values out or use fewer "
                   "aliases.")


def test_self_referencing_and_deeply_nested_yaml_are_refused(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("codecs:\n  me: &me\n    type: pillow\n    again: *me\n")
    with pytest.raises(RegistryError, match=f"{loop}:2: a YAML alias refers to a value that "
                       "contains it"):
        load_registry([loop])
    deep = tmp_path / "deep.yaml"
    deep.write_text("codecs: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(RegistryError, match=f"{deep}: YAML nested too deeply"):
        load_registry([deep])


def test_ordinary_aliases_keep_safe_load_semantics(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent("""\
        codecs:
          base: &base {type: pillow, format: JPEG, qualities: &ladder [10, 50, 90]}
          sharp:
            <<: *base
            qualities: [95]
          same: {type: pillow, format: WEBP, qualities: *ladder}
    """))
    registry = load_registry([path])
    data = yaml.safe_load(path.read_text())["codecs"]
    for name in ("base", "sharp", "same"):
        instance = registry.resolve("codecs", name)
        assert instance.params == {k: v for k, v in data[name].items() if k != "type"}
    assert registry.resolve("codecs", "sharp").params["format"] == "JPEG"


def test_registry_files_are_announced_recorded_and_in_the_leaderboard(registry, tmp_path,
                                                                      monkeypatch):
    import hashlib

    from jcsr_bench.report.leaderboard import leaderboard_from_store
    from jcsr_bench.results.store import load_curves

    stream = io.StringIO()
    from jcsr_bench.run.engine import run

    summary = run(registry=registry, datasets=["tiny"], codecs=["fa"], srs=["up"],
                  output=tmp_path / "out", progress=False, stream=stream, device="cpu")
    reg_file = (tmp_path / "reg" / "registry.yaml").resolve()
    assert stream.getvalue().splitlines()[0] == f"registry files: {reg_file} (--registry)"
    _, meta = load_curves(summary.db_path)
    digest = hashlib.sha256(reg_file.read_bytes()).hexdigest()
    assert meta["registry_files"] == [{"path": str(reg_file), "origin": "extra",
                                       "sha256": digest}]
    header = leaderboard_from_store(summary.output)
    assert f"- Registry files: registry.yaml (--registry, sha256 {digest[:12]})" in header

    monkeypatch.chdir(tmp_path)
    local = tmp_path / "jcsr-bench.yaml"
    local.write_text("codecs:\n  mine: {type: pillow, format: PNG, qualities: [6]}\n")
    loaded = load_registry()
    assert [f["origin"] for f in loaded.files] == ["shipped", "local"]
    assert loaded.files_text().endswith(f", {local.resolve()} (from the current folder)")
