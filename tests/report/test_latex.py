"""``leaderboard --format latex``: booktabs tables that compile, with the Markdown's numbers;
PDF plots with embedded fonts (incl. the Fig. 6 pair); ``visual --format pdf``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from fakes import go, make_registry
from test_html_report import markdown_cells

from jcsr_bench.cli.main import main
from jcsr_bench.report.latex import escape_latex
from jcsr_bench.report.leaderboard import leaderboard_from_store

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("latex")
    assert go(make_registry(tmp / "reg"), tmp, qualities=[1, 2, 3, 4]).exit_code == 0
    return tmp / "out"


def latex_of(capsys, *args: str) -> str:
    assert main(["leaderboard", "--format", "latex", *args]) == 0
    return capsys.readouterr().out


def body_rows(tex: str) -> dict[str, list[str]]:
    """First cell -> the other cells, of every body row (between midrule and bottomrule)."""
    rows = {}
    for block in re.findall(r"\\midrule\n(.*?)\\bottomrule", tex, flags=re.S):
        for line in block.splitlines():
            cells = [c.strip() for c in line.removesuffix(r"\\").split(" & ")]
            rows[cells[0]] = [re.sub(r"^n/a\\textsuperscript\{[a-z]\}$", "n/a", c)
                              .replace(r"\%", "%") for c in cells[1:]]
    return rows


def compile_tex(tmp_path, table: str) -> str:
    """Compile ``table`` in a minimal article with pdflatex; returns the log."""
    if shutil.which("pdflatex") is None:
        if IN_CI:
            pytest.fail("pdflatex is missing in CI (.ci/run installs texlive-latex-recommended)")
        pytest.skip("pdflatex is not installed")
    (tmp_path / "t.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n"
                                    "\\begin{document}\n" + table + "\\end{document}\n")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", "t.tex"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert (tmp_path / "t.pdf").read_bytes()[:5] == b"%PDF-"
    return log


def test_latex_leaderboard_compiles_and_equals_the_markdown(out, tmp_path, capsys):
    for anchor in ("fa+up", "fb+bicubic"):
        tex = latex_of(capsys, "--results", str(out), "--anchor", anchor)
        markdown = markdown_cells(leaderboard_from_store(out, anchor=anchor))
        rows = body_rows(tex)
        assert list(rows)[0] == escape_latex(anchor) + " (anchor)"
        for label, cells in markdown.items():
            if label != anchor:
                assert rows[escape_latex(label)] == cells, label
        # the order is the Markdown's: anchor, then by BD-Rate of the first metric
        assert [k.removesuffix(" (anchor)") for k in rows] == [
            escape_latex(k) for k in markdown]
    assert r"\toprule" in tex and r"\usepackage{booktabs}" in tex
    notes = re.findall(r"\\textsuperscript\{([a-z])\}~(.+?)\\\\", tex)
    assert notes and "n/a" in "".join(body_rows(tex)[escape_latex("fa+up")])
    assert "booktabs.sty" in compile_tex(tmp_path, tex)


def test_latex_pairs_is_the_papers_table_1_layout(out, tmp_path, capsys):
    tex = latex_of(capsys, "--results", str(out), "--pairs", "fb+bicubic:fa+bicubic",
                   "--pairs", "fa+up:fa+bicubic")
    head = re.search(r"\\toprule\n(.*?) \\\\", tex).group(1).split(" & ")
    assert head == ["Comparison", r"BD-Rate PSNR (\%)", "BD-PSNR (dB)",
                    r"BD-Rate MS-SSIM (\%)", "BD-MS-SSIM (dB)"]
    rows = body_rows(tex)
    assert list(rows) == ["fb+bicubic vs fa+bicubic", "fa+up vs fa+bicubic"]
    markdown = markdown_cells(leaderboard_from_store(out, anchor="fa+bicubic"))
    # the Markdown's BD columns: PSNR (2), PSNR-Y (2), MS-SSIM (2); Table 1 has PSNR, MS-SSIM
    for test in ("fb+bicubic", "fa+up"):
        cells = markdown[test]
        assert rows[f"{test} vs fa+bicubic"] == cells[:2] + cells[4:6]
    compile_tex(tmp_path, tex)


def pdf_fonts_embedded(path) -> None:
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and b"/FontFile2" in data  # TrueType (Type 42) programs
    if shutil.which("pdffonts"):
        listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True,
                                 check=True).stdout.splitlines()[2:]
        assert listing and all(line.split()[-5] == "yes" for line in listing), listing


def test_plots_as_pdf_with_embedded_fonts_and_the_fig6_pair(out, tmp_path):
    pdfs = sorted(p.name for p in (out / "plots").glob("*.pdf"))
    assert "fig6-tiny.pdf" in pdfs and "rd-tiny-psnr-rgb.pdf" in pdfs
    for name in pdfs:
        pdf_fonts_embedded(out / "plots" / name)
    # the Fig. 6 pair re-renders to the same bytes (no date in it)
    from jcsr_bench.report.coverage import load_view
    from jcsr_bench.report.plots import plot_fig6

    view = load_view(out)
    (again,) = plot_fig6(view.curves, tmp_path, anchor=view.anchor.pair)
    assert again.read_bytes() == (out / "plots" / "fig6-tiny.pdf").read_bytes()


def test_visual_format_pdf(out, monkeypatch, capsys):
    from jcsr_bench.cli import options

    monkeypatch.setattr(options, "registry", lambda args: make_registry(out.parent / "reg"))
    assert main(["visual", "--results", str(out), "--image", "img0", "--format", "pdf"]) == 0
    path = out / "visual-img0.pdf"
    assert capsys.readouterr().out.strip() == str(path)
    pdf_fonts_embedded(path)
    assert main(["visual", "--results", str(out), "--image", "img0", "--format", "pdf",
                 "--write", str(out / "x.png")]) == 2
    assert "--format pdf" in capsys.readouterr().err
