"""Missing pieces, up-front path checks and the run summary (``run.requirements``,
``run.preflight``, ``run.summary``), called directly."""

import io

import pytest

from jcsr_bench.kit.errors import StorageError
from jcsr_bench.run.preflight import check_output, check_run_paths
from jcsr_bench.run.requirements import (
    Missing,
    MissingPieces,
    add_missing,
    format_missing,
    missing_error,
    print_missing,
)
from jcsr_bench.run.summary import RunSummary, fmt_range, print_summary


def test_a_piece_two_components_need_is_listed_once_naming_both():
    found: list[Missing] = []
    add_missing(found, "codec bmshj", "put a.pth in /w", False, "codecs", "bmshj")
    add_missing(found, "codec other", "put a.pth in /w", True, "codecs", "other")
    add_missing(found, "sr b1", "put b.pth in /w", False, "sr", "b1")
    assert len(found) == 2 and found[0].explicit  # explicit once any needer is
    assert format_missing(found) == ["  codec bmshj; codec other: put a.pth in /w",
                                     "  sr b1: put b.pth in /w"]


def test_only_explicit_pieces_block_and_the_error_lists_them_all():
    found: list[Missing] = []
    add_missing(found, "codec x", "fetch x", True, "codecs", "x")
    add_missing(found, "metric lpips", "fetch alex.pth", False, "metrics", "lpips")
    error = missing_error(found)
    assert isinstance(error, MissingPieces)
    assert str(error) == "1 missing piece(s), nothing was computed:\n  codec x: fetch x"
    out = io.StringIO()
    print_missing(found, [Missing({"sr b1": ("sr", "b1")}, "downloads b1.pth", True)], out)
    assert ("to download when the run (or its training) starts (1):\n  sr b1: downloads b1.pth"
            in out.getvalue())
    assert "missing (1; the run stops until each is done):\n  codec x: fetch x" in out.getvalue()
    assert "lpips" not in out.getvalue()


def test_output_naming_a_file_is_refused_and_nothing_is_created(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StorageError, match="--output"):
        check_output(target, write=True)
    check_run_paths(tmp_path / "new", tmp_path / "cache", write=False)
    assert not (tmp_path / "new").exists() and not (tmp_path / "cache").exists()


def test_fmt_range_and_an_empty_summary(tmp_path):
    assert fmt_range([2.0, None, 1.0, float("nan")], ".1f") == "1.0-2.0"
    assert fmt_range([None], ".1f") == "n/a [1]" and fmt_range([3.0], ".2f") == "3.00"
    from jcsr_bench.results.store import Store

    db = tmp_path / "results.sqlite"
    Store(db).close()
    summary = RunSummary(0, tmp_path, db, cells=0)
    out = io.StringIO()
    print_summary(tmp_path, [], summary, out, stopped=False)
    assert "0 cells: 0 computed, 0 already stored, 0 failed" in out.getvalue()
    assert f"results: {tmp_path}" in out.getvalue()


def test_failed_downloads_of_one_folder_and_url_pattern_share_one_line():
    from jcsr_bench.run.requirements import group_remedies

    base = "https://compressai.s3.amazonaws.com/models/v1/"
    remedies = [f"quality {q}: could not download {base}m-{q}.pth.tar: <urlopen error "
                f"[Errno -2] Name or service not known>. Download it yourself into /c/ckpt "
                f"(file name m-{q}.pth.tar), or check your connection." for q in (1, 2, 3)]
    assert group_remedies(remedies) == [
        "3 weight files could not be downloaded (<urlopen error [Errno -2] Name or service "
        f"not known>): download each from {base}<name> into /c/ckpt yourself, or check your "
        "connection: m-1.pth.tar, m-2.pth.tar, m-3.pth.tar"]
    assert group_remedies(remedies[:1]) == remedies[:1]  # one file: its own line
