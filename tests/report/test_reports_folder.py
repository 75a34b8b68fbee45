"""A results folder's reports after several runs, bad images and every anchor case.

The reports (leaderboard.md, ``leaderboard --results``, results.csv, json/, plots/,
outputs.json) must describe exactly what they show: every stored combination, with
true counts, n/a reasons in notes under the tables, and the anchor explained.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import warnings

import numpy as np
import pytest
from fakes import make_registry
from PIL import Image

from jcsr_bench.report.leaderboard import leaderboard_from_store
from jcsr_bench.run.engine import run
from jcsr_bench.testing import sample_image


def go(registry, out, **kwargs):
    """A run like ``go`` in test_engine, returning (summary, what it printed)."""
    kwargs.setdefault("datasets", ["tiny"])
    kwargs.setdefault("codecs", ["fa", "fb"])
    kwargs.setdefault("srs", ["up", "bicubic"])
    stream = io.StringIO()
    summary = run(registry=registry, output=out, progress=False, stream=stream,
                  device="cpu", **kwargs)
    return summary, stream.getvalue()


def tables(md: str) -> list[dict[str, dict[str, str]]]:
    """Each table as {combination: {column: cell}}."""
    found, current, header = [], None, None
    for line in md.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if current is None:
            current, header = {}, cells
            found.append(current)
        elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
            current[cells[1]] = dict(zip(header, cells))
    return found


def notes(md: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r"^- \[(\d+)\] (.*)$", md, re.M)}


def note_of(cell: str, md: str) -> str:
    return notes(md)[re.search(r"\[(\d+)\]$", cell).group(1)]


def header(md: str) -> str:
    return md.split("\n## ")[0]


# -- point 1: what the folder's reports cover ---------------------------------------------


def test_reports_cover_the_whole_store_after_a_limited_run(tmp_path):
    registry = make_registry(tmp_path / "reg")
    out = tmp_path / "out"
    go(registry, out)  # 3 images x {fa, fb} x 2 qualities x {up, bicubic}
    # an export an earlier rendering (or an older harness) left, and a file of the user's
    stale = out / "json" / "tiny" / "old+gone.json"
    stale.write_text("{}")
    (out / "plots" / "rd-gone-psnr-rgb.png").write_bytes(b"x")
    (out / "mine.txt").write_text("keep me")
    _, printed = go(registry, out, codecs=["fa"], srs=["up"], limit=1)

    board = (out / "leaderboard.md").read_text()
    assert board == leaderboard_from_store(out)  # the command shows what the folder shows
    assert "## tiny (3 images)\n" in board
    assert re.search(r"- Dataset tiny: identity \S+, 3 images\n", board)
    (table,) = tables(board)
    assert sorted(table) == ["fa+bicubic", "fa+up", "fb+bicubic", "fb+up"]
    # all 3 images in every point (the fake images are too small for MS-SSIM: said)
    assert {row["Points"] for row in table.values()} == {"PSNR, PSNR-Y 2; MS-SSIM 0 [1]"}
    assert note_of("[1]", board).startswith("MS-SSIM n/a at every quality: n/a for 3 of 3 "
                                            "image(s) (first: img0: short side 40 px")
    assert "reports cover everything stored in this folder: 4 combinations on tiny " \
           "(3 images)" in printed

    exported = sorted((out / "json" / "tiny").glob("*.json"))
    assert [p.stem for p in exported] == ["fa+bicubic", "fa+up", "fb+bicubic", "fb+up"]
    for path in exported:
        assert json.loads(path.read_text())["images"] == [3, 3]
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3 * 2 * 2 * 2
    record = json.loads((out / "outputs.json").read_text())
    patterns = ("*.md", "*.csv", "*.html", "json/*/*.json", "plots/*")
    own = {p.relative_to(out).as_posix() for pattern in patterns for p in out.glob(pattern)}
    assert set(record["files"]) == own  # every export is listed, nothing else is there
    assert "plots/rd-tiny-psnr-rgb.png" in own
    assert not stale.exists() and not (out / "plots" / "rd-gone-psnr-rgb.png").exists()
    assert "removed 2 export(s) of an earlier rendering" in printed
    assert (out / "mine.txt").read_text() == "keep me"


def test_limited_runs_are_said_and_points_lacking_images_are_na(tmp_path):
    registry = make_registry(tmp_path / "reg")
    out = tmp_path / "out"
    go(registry, out, codecs=["fa"], limit=2)
    board = (out / "leaderboard.md").read_text()
    assert "## tiny (2 images)" in board
    assert "2 images (the first 2 only: run with --limit, not the whole dataset)" in board

    go(registry, out, codecs=["fb"], srs=["up"])  # the whole dataset: 3 images
    board = (out / "leaderboard.md").read_text()
    assert "## tiny (3 images)" in board and "--limit" not in header(board)
    (table,) = tables(board)
    assert note_of(table["fb+up"]["Points"], board).startswith(
        "MS-SSIM n/a at every quality: n/a for 3 of 3 image(s)")  # on all 3 images
    cell = table["fa+up"]["Points"]
    assert cell.startswith("0/2 [")  # never a mean over 2 of the 3 images
    assert note_of(cell, board) == (
        "bpp, PSNR, PSNR-Y, MS-SSIM n/a at every quality: computed on 2 of the dataset's 3 "
        "images (missing: img2); run it without --limit to complete it")
    assert table["fa+up"]["bpp range"] == f"n/a {cell.split()[-1]}"


# -- point 6: bad and tiny images ---------------------------------------------------------


def _photos(root, **images):
    root.mkdir(parents=True)
    for name, (height, width) in images.items():
        array = sample_image(height, width, seed=len(name)).permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(array)).save(root / f"{name}.png")
    return root


def _with_dataset(tmp_path, name, text):
    registry = make_registry(tmp_path / name)
    extra = tmp_path / name / "photos.yaml"
    extra.write_text(f"datasets:\n  photos: {text}\n")
    registry.add_file(extra)
    return registry


def test_a_bad_image_fails_its_cells_and_every_na_says_why(tmp_path):
    root = _photos(tmp_path / "photos", a=(164, 168), b=(164, 168))
    (root / "b.png").write_bytes((root / "b.png").read_bytes()[:200])  # truncated
    out = tmp_path / "out"
    registry = _with_dataset(tmp_path, "r1", f"{{type: folder, root: {root}}}")
    summary, printed = go(registry, out, datasets=["photos"], codecs=["fa"], srs=["up"])
    # the run goes on, exits 1 and names the file with the remedy
    assert summary.exit_code == 1 and {f.image for f in summary.failed} == {"b"}
    assert "b.png" in summary.failed[0].error and "skip_bad: true" in summary.failed[0].error
    board = (out / "leaderboard.md").read_text()
    (table,) = tables(board)
    cell = table["fa+up"]["Points"]
    assert cell.startswith("0/2 [")
    why = note_of(cell, board)
    assert why.startswith("bpp, PSNR, PSNR-Y, MS-SSIM n/a at every quality: 1 of 2 image(s) "
                          "failed (first: b: loading image: ")
    assert "b.png" in why and "skip_bad: true" in why
    ref = cell.split()[-1]  # the row's other n/a cells point to the same note
    assert [table["fa+up"][k] for k in ("bpp range", "Encode", "Decode", "SR")] == \
        [f"n/a {ref}"] * 4
    assert not re.search(r"n/a(?! \[\d+\])", board.split("\n## ")[1].split("Notes:")[0])

    # following the remedy: the bad file is skipped, its stored cells are hidden (named)
    registry = _with_dataset(tmp_path, "r2", f"{{type: folder, root: {root}, skip_bad: true}}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary, _ = go(registry, out, datasets=["photos"], codecs=["fa"], srs=["up"])
    assert summary.exit_code == 0 and summary.computed == 0  # a's cells were kept
    assert any("skipping a bad image" in str(w.message) for w in caught)
    board = (out / "leaderboard.md").read_text()
    assert "## photos (1 image)\n" in board
    assert "1 image; stored results of 1 image no longer in the dataset are not shown (b)" \
        in board
    (table,) = tables(board)
    assert table["fa+up"]["Points"] == "2" and "n/a [" not in board
    with (out / "results.csv").open() as handle:
        assert {row["image"] for row in csv.DictReader(handle)} == {"a"}


def test_an_image_too_small_for_ms_ssim_is_explained(tmp_path):
    root = _photos(tmp_path / "photos", big=(164, 168), small=(8, 8))
    registry = _with_dataset(tmp_path, "r", f"{{type: folder, root: {root}}}")
    out = tmp_path / "out"
    summary, _ = go(registry, out, datasets=["photos"], codecs=["fa"], srs=["up", "bicubic"])
    assert summary.exit_code == 0
    board = (out / "leaderboard.md").read_text()
    (table,) = tables(board)
    cell = table["fa+up"]["Points"]
    # PSNR is defined; PSNR-Y and MS-SSIM are not for "small": counted per metric
    assert cell.startswith("PSNR 2; PSNR-Y, MS-SSIM 0 [")
    assert note_of(cell, board) == (
        "PSNR-Y n/a at every quality: n/a for 1 of 2 image(s) (first: small: image 8x8 px "
        "has nothing left after cropping 4 px borders); "
        "MS-SSIM n/a at every quality: n/a for 1 of 2 image(s) (first: small: short side "
        "8 px <= 160: the 5-scale MS-SSIM needs a short side > 160 px)")
    ms = table["fa+bicubic"]["BD-Rate MS-SSIM (%)"]
    assert note_of(ms, board) == ("anchor curve has 0 point(s); the pchip method needs at "
                                  "least 2; anchor and test values n/a: see note 1")
    assert re.fullmatch(r"[+-]\d+\.\d{3}", table["fa+bicubic"]["BD-PSNR (dB)"])


# -- point 7: the anchor, said in every case ----------------------------------------------


def test_the_anchor_and_why_are_said_in_every_case(tmp_path):
    registry = make_registry(tmp_path / "reg")

    def anchor_line(md):
        return re.search(r"^- Anchor: (.*)$", md, re.M).group(1)

    # the suite's anchor (default suite: fa+bicubic)
    run(registry=registry, output=tmp_path / "suite", progress=False, stream=io.StringIO(),
        device="cpu")
    board = (tmp_path / "suite" / "leaderboard.md").read_text()
    assert anchor_line(board) == "fa+bicubic (the anchor of suite default)"
    # chosen when re-rendering
    assert anchor_line(leaderboard_from_store(tmp_path / "suite", anchor="fa+up")) == \
        "fa+up (chosen with --anchor)"
    # given to run
    go(registry, tmp_path / "given", anchor="fb+up")
    assert anchor_line((tmp_path / "given" / "leaderboard.md").read_text()) == \
        "fb+up (given to run --anchor)"
    # none anywhere: the first combination, said in the header and printed by the run
    _, printed = go(registry, tmp_path / "none")
    why = ("no anchor given and the runs named their combinations (--codec/--sr) without "
           "--anchor: the first combination in the results; choose one with --anchor CODEC+SR")
    assert anchor_line((tmp_path / "none" / "leaderboard.md").read_text()) == f"fa+up ({why})"
    assert f"note: leaderboard anchor fa+up: {why}" in printed
    # the suite's anchor was not run: said, not silently replaced
    _, printed = go(registry, tmp_path / "missing", datasets=None, codecs=None, srs=["up"])
    line = anchor_line((tmp_path / "missing" / "leaderboard.md").read_text())
    assert line == ("fa+up (the anchor of suite default is fa+bicubic, which has no results "
                    "here: the first combination in the results instead; choose one with "
                    "--anchor CODEC+SR)")
    assert "note: leaderboard anchor fa+up: the anchor of suite default is fa+bicubic" in printed
    # a later run without an anchor keeps the earlier run's
    go(registry, tmp_path / "suite", codecs=["fa"], srs=["up"])
    assert anchor_line((tmp_path / "suite" / "leaderboard.md").read_text()) == \
        "fa+bicubic (the anchor of suite default)"


@pytest.fixture(autouse=True)
def _quiet_plots(monkeypatch):
    """RD plots are tested elsewhere; here they only need to exist (fast)."""
    import jcsr_bench.report.plots as plots

    def fake(curves, out_dir, anchor=None):
        out_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for dataset in dict.fromkeys(c.dataset for c in curves):
            path = out_dir / f"rd-{dataset}-psnr-rgb.png"
            path.write_bytes(b"png")
            files.append(path)
        return files

    monkeypatch.setattr(plots, "plot_reports", fake)


def test_header_provenance_is_that_of_the_runs_that_computed_the_shown_cells(tmp_path):
    from jcsr_bench.report.coverage import load_view
    from jcsr_bench.results.store import CellRecord, Store

    def record(store, run_id, codec):
        for qi, (bpp, psnr) in enumerate(((0.1, 30.0), (0.2, 32.0))):
            store.record(CellRecord("d", "img", codec, qi + 1, "sr", 0, qi, f"{codec}{qi}",
                                    "ck", "sk", "h", values={"bpp": bpp, "psnr-rgb": psnr}),
                         run_id)

    names = {"d": {"identity": "d:1", "images": 1, "limit": None, "names": ["img"]}}
    with Store(tmp_path / "results.sqlite") as store:
        for device, date, codec in (("cpu A", "2026-01-01T00:00:00+00:00", "c1"),
                                    ("cuda B", "2026-01-02T00:00:00+00:00", "c2"),
                                    ("cpu C", "2026-01-03T00:00:00+00:00", None)):
            run_id = store.begin_run({"device": device, "date": date, "datasets": names,
                                      "harness_version": "1.0"})
            if codec:
                record(store, run_id, codec)
            store.end_run(run_id, "finished")
    meta = load_view(tmp_path).meta
    # the third run computed nothing shown: its device and date do not describe the table
    assert meta["device"] == "cpu A (run 1); cuda B (run 2)"
    assert meta["date"] == "2026-01-01T00:00:00+00:00 to 2026-01-02T00:00:00+00:00"
    assert meta["harness_version"] == "1.0"
    board = leaderboard_from_store(tmp_path)
    assert "- Device: cpu A (run 1); cuda B (run 2)\n" in board


# -- issue 25: one image ruling the mean rate; the columns the store holds ----------------


def test_a_dominating_image_is_warned_and_the_aggregate_is_recorded(tmp_path, capsys):
    from jcsr_bench.cli.main import main

    root = _photos(tmp_path / "photos", big=(164, 168), small=(8, 8))
    registry = _with_dataset(tmp_path, "r", f"{{type: folder, root: {root}}}")
    out = tmp_path / "out"
    _, printed = go(registry, out, datasets=["photos"], codecs=["fa"], srs=["up", "bicubic"],
                    metrics=["psnr-rgb"])
    warning = [line for line in printed.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and warning[0].startswith(
        "warning: photos/small dominates the mean rate of fa+up, fa+bicubic: up to 9")
    assert "> 3x its pixel share and > 25%" in warning[0] and "--bd-aggregate" in warning[0]
    board = (out / "leaderboard.md").read_text()
    assert "- small dominates the mean rate of fa+up, fa+bicubic" in board
    (table,) = tables(board)
    assert [k for k in table["fa+up"] if k.startswith("BD")] == [  # only what is stored
        "BD-Rate PSNR (%)", "BD-PSNR (dB)"]
    assert table["fa+up"]["Points"] == "2"  # --metrics psnr-rgb: no MS-SSIM n/a counted
    # chosen on the run: recorded, so the folder's leaderboard and the command agree
    _, printed = go(registry, out, datasets=["photos"], codecs=["fa"], srs=["up", "bicubic"],
                    metrics=["psnr-rgb"], bd_aggregate="per-image", rate="pooled")
    assert "warning:" not in printed
    board = (out / "leaderboard.md").read_text()
    assert "- BD aggregate: per-image" in board and "- Rate: pooled" in board
    assert board == leaderboard_from_store(out)
    assert main(["leaderboard", "--results", str(out), "--bd-aggregate", "curve",
                 "--rate", "mean"]) == 0
    assert "- BD aggregate: curve" in capsys.readouterr().out
    with pytest.raises(Exception, match="--rate must be one of mean, pooled"):
        go(registry, out, datasets=["photos"], codecs=["fa"], rate="median")
