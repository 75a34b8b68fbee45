"""Markdown leaderboards and paper-style pair tables: content, order, escaping, determinism."""

from __future__ import annotations

import re

import pytest

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.report.leaderboard import (
    parse_label,
    parse_pairs,
    rd_series,
    render_leaderboard,
    render_pairs,
)
from jcsr_bench.report.markdown import escape
from jcsr_bench.results.bd import bd_quality, bd_rate, msssim_db
from jcsr_bench.results.curves import Curve, Point

R1 = [0.948776, 0.459360, 0.248644, 0.135824]
Q1 = [40.037, 38.615, 36.845, 34.851]
R2 = [0.978780, 0.446900, 0.245152, 0.135624]
Q2 = [40.121, 38.651, 36.970, 34.987]

META = {
    "harness_version": "9.8.7",
    "plugin_versions": {"jcsr_bench.builtin": "9.8.7", "acme-codecs": "1.2.3"},
    "datasets": {
        "kodak": {"identity": "kodak:sha256=abcd1234", "images": 24},
        "div2k-valid": {"identity": "div2k:sha256=feed0000", "images": 100},
    },
    "device": "cpu (test)",
    "date": "2025-03-04T05:06:07+00:00",
}


def ms_from_db(db: float) -> float:
    return 1 - 10 ** (-db / 10)


def curve(codec, sr, rates, psnr, *, dataset="kodak", ms_db=None, ms_reason=None, times=None):
    """A curve whose MS-SSIM (in dB) is ``ms_db`` (default: PSNR - 20 dB)."""
    ms_db = ms_db if ms_db is not None else [q - 20 for q in psnr]
    points = []
    for i, (r, q, m) in enumerate(zip(rates, psnr, ms_db)):
        values = {"bpp": r, "psnr-rgb": q, "ms-ssim-rgb": None if ms_reason else ms_from_db(m)}
        values.update(times or {"encode_s": 0.5, "decode_s": 0.25, "sr_s": 1.0})
        reasons = {"ms-ssim-rgb": ms_reason} if ms_reason else {}
        points.append(Point(i + 1, values, reasons, 24))
    return Curve(dataset, codec, sr, points)


def base_curves():
    return [
        curve("bmshj", "esrgan-b1", R1, Q1),
        curve("bmshj", "esrgan-b2", R2, Q2),
        curve("jpeg", "bicubic", [r * 2 for r in R1], Q1, times={"encode_s": 0.01}),
        curve("bmshj", "bicubic", [r * 0.5 for r in R1], Q1),
    ]


def tables(md: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (split on '|'), separator lines removed."""
    found, current = [], None
    for line in md.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                found.append(current)
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        else:
            current = None
    return found


def column(table, name):
    i = table[0].index(name)
    return [row[i] for row in table[1:]]


def marker(cell: str) -> str:
    """The note number of an ``n/a [k]`` or ``0/4 [k]`` cell."""
    found = re.search(r"\[(\d+)\]$", cell)
    assert found, cell
    return found.group(1)


def notes(md: str) -> dict[str, str]:
    """Every ``- [k] reason`` under the tables (HTML entities decoded), by number."""
    import html

    return {k: html.unescape(v) for k, v in re.findall(r"^- \[(\d+)\] (.*)$", md, re.M)}


def test_rows_sorted_by_bd_rate_with_anchor_first():
    md = render_leaderboard(base_curves(), META, anchor=("bmshj", "esrgan-b1"))
    (table,) = tables(md)
    assert column(table, "Combination") == [
        "bmshj+esrgan-b1",
        "bmshj+bicubic",  # rate x 0.5 -> -50 %
        "bmshj+esrgan-b2",  # -4.42 %
        "jpeg+bicubic",  # rate x 2 -> +100 %
    ]
    assert column(table, "#") == ["anchor", "1", "2", "3"]
    assert column(table, "BD-Rate PSNR (%)") == ["—", "-50.00", "-4.42", "+100.00"]


def test_bd_cells_match_bd_functions():
    md = render_leaderboard(base_curves(), META, anchor=("bmshj", "esrgan-b1"))
    (table,) = tables(md)
    row = table[[r[1] for r in table].index("bmshj+esrgan-b2")]
    cell = dict(zip(table[0], row))
    assert cell["BD-Rate PSNR (%)"] == f"{bd_rate(R1, Q1, R2, Q2):+.2f}"
    assert cell["BD-PSNR (dB)"] == f"{bd_quality(R1, Q1, R2, Q2):+.3f}"
    # MS-SSIM BD is on the dB scale: dB = PSNR - 20 here, so the same numbers as PSNR.
    assert cell["BD-Rate MS-SSIM (%)"] == cell["BD-Rate PSNR (%)"]
    assert cell["BD-MS-SSIM (dB)"] == cell["BD-PSNR (dB)"]
    assert cell["Points"] == "4"
    assert cell["bpp range"] == "0.1356–0.9788"
    assert (cell["Encode"], cell["Decode"], cell["SR"]) == ("500 ms", "250 ms", "1 s")


def test_msssim_bd_uses_db_not_linear_values():
    # MS-SSIM dB shifted by exactly +0.4 dB at equal rate -> BD-MS-SSIM = +0.400 dB.
    anchor = curve("c", "a", R1, Q1, ms_db=[20.0, 18.0, 16.0, 14.0])
    test = curve("c", "b", R1, Q1, ms_db=[20.4, 18.4, 16.4, 14.4])
    (table,) = tables(render_leaderboard([anchor, test], META, anchor=None))
    assert column(table, "BD-MS-SSIM (dB)")[1] == "+0.400"


def test_undefined_bd_is_na_with_reason_and_sorted_last():
    curves = base_curves() + [
        curve("bmshj", "one-point", R2[:1], Q2[:1]),
        curve("tiny", "sr", R2, Q2, ms_reason="short side 128 px < 161"),
        curve("far", "away", [5.0, 6.0], [50.0, 51.0]),
    ]
    md = render_leaderboard(curves, META, anchor=("bmshj", "esrgan-b1"))
    (table,) = tables(md)
    labels = column(table, "Combination")
    rates = dict(zip(labels, column(table, "BD-Rate PSNR (%)")))
    ms = dict(zip(labels, column(table, "BD-Rate MS-SSIM (%)")))
    assert labels[-2:] == ["bmshj+one-point", "far+away"]  # n/a rows last, by label
    assert column(table, "#")[-2:] == ["—", "—"]
    found = notes(md)
    assert found[marker(rates["bmshj+one-point"])].startswith("test curve has 1 point(s)")
    assert found[marker(rates["far+away"])].startswith("the curves do not overlap in quality")
    # MS-SSIM missing everywhere on a curve: its Points note gives the recorded reason, and
    # the BD note points to it.
    points = dict(zip(labels, column(table, "Points")))["tiny+sr"]
    assert points.startswith("PSNR 4; MS-SSIM 0 [")  # counted per metric
    assert found[marker(points)] == "MS-SSIM n/a at every quality: short side 128 px < 161"
    assert found[marker(ms["tiny+sr"])].endswith(f"test values n/a: see note {marker(points)}")
    assert rates["tiny+sr"] == f"{bd_rate(R1, Q1, R2, Q2):+.2f}"


def test_low_overlap_is_flagged_in_the_cell():
    shifted = curve("x", "y", [r * 1.1 for r in R1], [q + 3.5 for q in Q1])
    md = render_leaderboard([curve("a", "b", R1, Q1), shifted], META, anchor=None)
    (table,) = tables(md)
    assert re.fullmatch(r"[+-]\d+\.\d\d \(overlap 19%\)", column(table, "BD-Rate PSNR (%)")[1])


def test_header_records_the_provenance():
    md = render_leaderboard(base_curves(), META, anchor=("bmshj", "esrgan-b1"), method="akima")
    head = md.split("\n## ")[0]
    for text in (
        "jcsr-bench 9.8.7",
        "acme-codecs 1.2.3",
        "jcsr_bench.builtin 9.8.7",
        "kodak: identity kodak:sha256=abcd1234, 24 images",
        "BD method: akima",
        "Anchor: bmshj+esrgan-b1",
        "MS-SSIM",
        "Device: cpu (test)",
        "Date: 2025-03-04T05:06:07+00:00",
    ):
        assert text in head
    assert "## kodak (24 images)" in md


def test_anchor_none_takes_the_first_curve_and_says_so():
    curves = base_curves()[::-1]
    md = render_leaderboard(curves, META, anchor=None)
    assert ("Anchor: bmshj+bicubic (no anchor given: the first combination in the results; "
            "choose one with --anchor CODEC+SR)") in md
    (table,) = tables(md)
    assert table[1][:2] == ["anchor", "bmshj+bicubic"]


def test_unknown_anchor_and_method_are_user_errors():
    msg = re.escape("anchor 'bmshj+esrgan-b3' is not in the results")
    with pytest.raises(JcsrError, match=msg):
        render_leaderboard(base_curves(), META, anchor=("bmshj", "esrgan-b3"))
    with pytest.raises(JcsrError, match="unknown BD method"):
        render_leaderboard(base_curves(), META, anchor=None, method="linear")
    with pytest.raises(JcsrError, match="no results"):
        render_leaderboard([], META, anchor=None)


def test_one_table_per_dataset_and_missing_anchor():
    curves = base_curves() + [
        curve("bmshj", "esrgan-b2", R2, Q2, dataset="div2k-valid"),
        curve("jpeg", "bicubic", R1, Q1, dataset="div2k-valid"),
    ]
    md = render_leaderboard(curves, META, anchor=("bmshj", "esrgan-b1"))
    kodak, div2k = tables(md)
    assert md.index("## kodak") < md.index("## div2k-valid (100 images)")
    assert len(kodak) == 5 and len(div2k) == 3
    assert "Anchor bmshj+esrgan-b1 was not evaluated on this dataset." in md
    (ref,) = set(column(div2k, "BD-PSNR (dB)"))
    assert notes(md)[marker(ref)] == "the anchor was not evaluated on this dataset"


def test_rendering_is_deterministic():
    a = render_leaderboard(base_curves(), dict(META), anchor=("bmshj", "esrgan-b1"))
    b = render_leaderboard(base_curves(), dict(META), anchor=("bmshj", "esrgan-b1"))
    assert a.encode() == b.encode()
    assert a.endswith("\n") and not a.endswith("\n\n")


def test_hostile_plugin_name_renders_as_one_literal_cell():
    evil = curve("a|b<script>", "x_y*`[z]`\\", R2, Q2)
    meta = dict(META, plugin_versions={"a|b<script>": "1|2\n# hi"}, device="gpu <b>")
    md = render_leaderboard(base_curves() + [evil], meta, anchor=("bmshj", "esrgan-b1"))
    assert "<script>" not in md and "<b>" not in md
    assert "\n# hi" not in md
    (table,) = tables(md)
    width = len(table[0])
    assert all(len(row) == width for row in table)  # the '|' did not add a cell
    labels = column(table, "Combination")
    expected = "a&#124;b&lt;script>+x_y&#42;&#96;&#91;z&#93;&#96;&#92;"
    assert expected in labels
    assert "- Plugins: a&#124;b&lt;script> 1&#124;2 # hi\n" in md  # '#' mid-line is text


def test_escape_leaves_no_active_character():
    raw = '#a|b<script>*_`[]\\&#1;~!$"\r\n\tz'
    out = escape(raw)
    bare = re.sub(r"&(#\d+|[a-z]+);", "", out)  # what is left outside the entities
    assert bare == 'abscript>#1;!" z'  # '!', '"', '>' and a '#' inside are inert here
    # Entities decode back to the original text (newlines/tabs become spaces).
    import html

    assert html.unescape(out) == '#a|b<script>*_`[]\\&#1;~!$" z'
    # ordinary text stays readable in a terminal: intraword '_', a lone '&', '<=' and '>'
    assert escape("plain-name_v2 x86_64") == "plain-name_v2 x86_64"
    assert escape("R&D: 8 px <= 160 > 2") == "R&D: 8 px <= 160 > 2"
    assert escape("_x_ __init__") == "&#95;x&#95; &#95;&#95;init&#95;&#95;"
    assert escape("# title") == "&#35; title" and escape("> quote") == "&gt; quote"


def _render_gfm(md: str) -> str:
    """HTML of ``md`` by a CommonMark parser with GFM tables and strikethrough."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)


def test_escaped_names_render_literally_in_a_real_markdown_parser():
    import html

    hostile = ["a|b<script>alert(1)</script>", "x86_64", "_em_ *em* **b** ~~s~~",
               "[link](http://x) ![i](y)", "`code` \\* &amp; &#124; <b>bold</b>",
               "# heading", "> quote", "snake__case_", "R&D <= 2 > 1"]
    rows = "\n".join(f"| {escape(h)} | x |" for h in hostile)
    out = _render_gfm(f"| name | other |\n|:--|:--|\n{rows}\n")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", out)
    assert len(cells) == 2 * len(hostile)  # every row kept its two cells
    for text, cell in zip(hostile, cells[::2]):
        assert "<" not in cell.replace("&lt;", "")  # no element at all: no HTML, no markup
        assert html.unescape(cell) == text  # and it reads as the original text
    header = _render_gfm(f"- Device: {escape('cpu (x86_64, torch threads 2)')}\n")
    assert "x86_64" in header and "&#95;" not in header


def test_rd_series_transforms_and_skips():
    c = curve("c", "s", [0.1, 0.2, 0.3], [30.0, 31.0, 32.0])
    c.points[1].values["ms-ssim-rgb"] = 1.0  # infinite in dB
    c.points[2].values["psnr-rgb"] = None
    c.points[2].reasons["psnr-rgb"] = "decode failed"
    rates, quals, notes = rd_series(c, "ms-ssim-rgb")
    assert rates == [0.1, 0.2, 0.3][:1] + [0.3] and quals[0] == pytest.approx(10.0)
    assert notes == ["ms-ssim-rgb = 1 at quality 2 (infinite in dB)"]
    assert quals[1] == pytest.approx(msssim_db(ms_from_db(12.0)))
    rates, quals, notes = rd_series(c, "psnr-rgb")
    assert rates == [0.1, 0.2] and notes == ["psnr-rgb n/a: decode failed"]


# ------------------------------------------------------------------- pairs


def test_pairs_table_like_the_paper():
    curves = base_curves() + [
        curve("bmshj", "esrgan-b1", R1, Q1, dataset="div2k-valid"),
        curve("bmshj", "esrgan-b2", [r * 0.8 for r in R1], Q1, dataset="div2k-valid"),
    ]
    md = render_pairs(curves, META, [("bmshj+esrgan-b2", "bmshj+esrgan-b1")])
    assert "## bmshj+esrgan-b2 vs bmshj+esrgan-b1" in md
    (table,) = tables(md)
    assert table[0] == [
        "Dataset",
        "BD-Rate PSNR (%)",
        "BD-PSNR (dB)",
        "BD-Rate MS-SSIM (%)",
        "BD-MS-SSIM (dB)",
    ]
    assert table[1] == [
        "kodak",
        f"{bd_rate(R1, Q1, R2, Q2):+.2f}",
        f"{bd_quality(R1, Q1, R2, Q2):+.3f}",
        f"{bd_rate(R1, Q1, R2, Q2):+.2f}",
        f"{bd_quality(R1, Q1, R2, Q2):+.3f}",
    ]
    assert table[2][:2] == ["div2k-valid", "-20.00"]
    assert "different codecs" not in md


def test_pairs_errors_and_parsing():
    with pytest.raises(JcsrError, match=r"'bmshj\+esrgan-b3' is not in the results.*Did you mean"):
        render_pairs(base_curves(), META, [("bmshj+esrgan-b3", "bmshj+esrgan-b1")])
    md = render_pairs(base_curves(), META, [("jpeg+bicubic", "bmshj+esrgan-b1")])
    assert "different codecs" in md
    assert parse_pairs(["a+b:c+d"]) == [("a+b", "c+d")]
    assert parse_label("bmshj+esrgan-b2") == ("bmshj", "esrgan-b2")
    for bad in ("a+b", "a+b:", "ab:c+d"):
        with pytest.raises(JcsrError):
            parse_pairs([bad])


# ------------------------------------------------------------------- store


def test_rerender_from_store_is_byte_identical(tmp_path):
    from jcsr_bench.report.leaderboard import leaderboard_from_store
    from jcsr_bench.results.store import CellRecord, Store

    meta = dict(META, anchor="bmshj+esrgan-b1")
    with Store(tmp_path / "results.sqlite") as store:
        run = store.begin_run(meta)
        for sr, rates, psnr in (("esrgan-b1", R1, Q1), ("esrgan-b2", R2, Q2)):
            for qi, (r, q) in enumerate(zip(rates, psnr)):
                for ii, delta in enumerate((-0.5, 0.5)):  # two images, mean = (r, q)
                    rec = CellRecord(
                        "kodak", f"img{ii}", "bmshj", qi + 1, sr, ii, qi,
                        f"k{sr}{qi}{ii}", "ck", "sk", f"h{ii}",
                        values={"bpp": r * (1 + delta / 10), "psnr-rgb": q + delta},
                    )  # fmt: skip
                    store.record(rec, run)
        store.end_run(run, "ok")
    first = leaderboard_from_store(tmp_path)
    assert leaderboard_from_store(tmp_path / "results.sqlite") == first
    assert "Anchor: bmshj+esrgan-b1 (the run's anchor)\n" in first
    assert "Date: 2025-03-04T05:06:07+00:00" in first
    (table,) = tables(first)
    assert column(table, "Combination") == ["bmshj+esrgan-b1", "bmshj+esrgan-b2"]
    assert column(table, "BD-Rate PSNR (%)")[1] == f"{bd_rate(R1, Q1, R2, Q2):+.2f}"
    flipped = leaderboard_from_store(tmp_path, anchor="bmshj+esrgan-b2")
    assert column(tables(flipped)[0], "Combination")[0] == "bmshj+esrgan-b2"


def test_header_lists_what_the_run_could_not_evaluate():
    curves = [Curve("d", "jpeg", "bicubic", [Point(q, {"bpp": 0.1 * q, "psnr-rgb": 30.0 + q})
                                             for q in (1, 2, 3)])]
    meta = {"skipped": [{"kind": "codec", "name": "bmshj", "reason": "missing weights: q1 /x"},
                        {"kind": "codec", "name": "bmshj", "reason": "missing weights: q2 /y"},
                        {"kind": "sr", "name": "esrgan-b1", "reason": "missing weights: /z"}]}
    text = render_leaderboard(curves, meta, anchor=("jpeg", "bicubic"))
    expected = "- Not evaluated: codec bmshj (missing weights), sr esrgan-b1 (missing weights)\n"
    assert expected in text
    assert "/x" not in text and "/z" not in text
    offline = {"kind": "metric", "name": "lpips", "reason": (
        "missing weights: weight file alexnet-owt-7be5be79.pth is not in /home/u/.cache/torch/"
        "hub/checkpoints: download it from https://download.pytorch.org/models/"
        "alexnet-owt-7be5be79.pth into that folder")}
    failed = {"kind": "metric", "name": "lpips", "reason": (
        "missing weights: could not download https://x.org/a.pth: down. Download it yourself "
        "into /tmp/h (file name lpips-v0.1-alex-df73285e.pth), or check your connection.")}
    text = render_leaderboard(curves, {"skipped": [offline, failed, offline]},
                              anchor=("jpeg", "bicubic"))
    assert ("- Not evaluated: metric lpips (missing weights: alexnet-owt-7be5be79.pth, "
            "lpips-v0.1-alex-df73285e.pth) — put the named files in torch hub's checkpoint "
            "folder") in text
    assert "/home/u" not in text and "/tmp/h" not in text


# ------------------------------------------------------------------- readability


def test_times_use_adaptive_units():
    from jcsr_bench.report.text import format_seconds

    cases = {0.000412: "412 µs", 0.0009997: "1 ms", 0.004123: "4.12 ms", 0.25: "250 ms",
             1.234: "1.23 s", 4567.0: "4567 s", 5e-7: "0.5 µs", 0.0: "0 s"}
    assert {v: format_seconds(v) for v in cases} == cases
    assert format_seconds(float("nan")) == "n/a"
    fast = curve("jpeg", "fast", R2, Q2, times={"encode_s": 2e-4, "decode_s": 3.5e-5,
                                                 "sr_s": 0.0123})
    (table,) = tables(render_leaderboard(base_curves() + [fast], META, anchor=None))
    row = dict(zip(table[0], table[[r[1] for r in table].index("jpeg+fast")]))
    assert (row["Encode"], row["Decode"], row["SR"]) == ("200 µs", "35 µs", "12.3 ms")


def test_counts_use_singular_and_plural():
    from jcsr_bench.report.text import count

    assert (count(1, "image"), count(7, "image"), count(0, "image")) == \
        ("1 image", "7 images", "0 images")
    meta = dict(META, datasets={"kodak": {"identity": "k", "images": 1}})
    md = render_leaderboard(base_curves(), meta, anchor=None)
    assert "## kodak (1 image)\n" in md and "- Dataset kodak: identity k, 1 image\n" in md


def test_header_explains_rank_overlap_and_notes_when_shown():
    plain = render_leaderboard(base_curves()[:2], META, anchor=("bmshj", "esrgan-b1"))
    head = plain.split("\n## ")[0]
    assert "- Rank (#): by BD-Rate PSNR against the anchor, lowest (fewest bits) first; " \
           "— = not ranked because that BD-Rate is n/a" in head
    assert "overlap N%" not in head and "n/a [k]" not in head  # nothing of the kind shown
    shifted = curve("x", "y", [r * 1.1 for r in R1], [q + 3.5 for q in Q1])
    far = curve("far", "away", [5.0, 6.0], [50.0, 51.0])
    md = render_leaderboard([curve("a", "b", R1, Q1), shifted, far], META, anchor=None)
    head = md.split("\n## ")[0]
    assert "- overlap N%: the two curves share only N% of their combined range" in head
    assert "- n/a [k]: not defined; reason k is listed under the table" in head
    (table,) = tables(md)
    assert column(table, "#") == ["anchor", "1", "—"]
