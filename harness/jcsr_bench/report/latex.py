"""Paper-ready LaTeX tables (booktabs) of the BD numbers the Markdown leaderboard prints.

The numbers come from the Markdown leaderboard's own BD code, formatted the same way,
so the two never disagree. A cell that is n/a is marked with a letter whose reason is
written in the table's note. The output is a ``table`` environment to ``\\input`` into
a paper; it needs ``\\usepackage{booktabs}``. Deterministic, like the Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.report.leaderboard import (
    METHOD_TEXT,
    _bd_columns,
    _bd_pair,
    _by_label,
    _check_method,
    table_metrics,
)
from jcsr_bench.results.curves import Curve

__all__ = ["escape_latex", "render_latex", "render_latex_pairs"]

_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "\\": r"\textbackslash{}", "<": r"\textless{}", ">": r"\textgreater{}",
            "|": r"\textbar{}"}
_SPECIAL_RE = re.compile("|".join(re.escape(k) for k in _SPECIAL))
PAIR_METRICS = ("psnr-rgb", "ms-ssim-rgb")


def escape_latex(text: object) -> str:
    """``text`` as literal LaTeX text (plugin names may hold ``_``, ``%``, ``&``...)."""
    clean = " ".join(str(text).split())
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(0)], clean)


class _Notes:
    """Lettered reasons of the n/a cells (same reason, same letter)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.overlap = False

    def mark(self, reason: str) -> str:
        if reason not in self.texts:
            self.texts.append(reason)
        letter = chr(ord("a") + self.texts.index(reason) % 26)
        return rf"n/a\textsuperscript{{{letter}}}"

    def lines(self) -> list[str]:
        return [rf"\textsuperscript{{{chr(ord('a') + i % 26)}}}~{escape_latex(t)}\\"
                for i, t in enumerate(self.texts)]


def _cell(cell, notes: _Notes) -> str:
    if cell.overlap:
        notes.overlap = True
    if cell.value is not None:
        return escape_latex(cell.text)
    reason = "; ".join([cell.reason, *(f"{who} {why}" for who, why in cell.gaps)])
    return notes.mark(reason)


def _columns(metrics: Sequence[str]) -> list[str]:
    return _bd_columns(metrics, escape_latex, r"\%")


def _table(head: list[str], rows: list[list[str]], align: str, caption: str, label: str,
           notes: _Notes, meta: Mapping, method: str) -> list[str]:
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{caption}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(head) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    note = [rf"BD method: {escape_latex(METHOD_TEXT.get(method, method))}. Negative BD-Rate: "
            r"fewer bits than the anchor at equal quality.\\"]
    if notes.overlap:
        note.append(r"overlap N\%: the two curves share only N\% of their combined range; "
                    r"the BD value averages over that shared part only.\\")
    note += notes.lines()
    lines += [r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize", *note,
              r"\end{minipage}", r"\end{table}"]
    return lines


def _preamble(meta: Mapping, what: str) -> list[str]:
    return [f"% {what} -- jcsr-bench {meta.get('harness_version', 'unknown')}; "
            f"results of {meta.get('date', 'unknown')}",
            r"% needs \usepackage{booktabs}"]


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9:-]+", "-", text).strip("-")


def render_latex(curves: Sequence[Curve], meta: Mapping, *, anchor: tuple[str, str],
                 method: str = "pchip") -> str:
    """The leaderboard's BD columns as one booktabs table per dataset (rows in the
    Markdown's order: the anchor, then by the first metric's BD-Rate)."""
    _check_method(method)
    if not curves:
        raise JcsrError("no results to render: the results store holds no curves")
    anchor_label = f"{anchor[0]}+{anchor[1]}"
    metrics = table_metrics(curves)  # the Markdown leaderboard's columns
    out = _preamble(meta, "jcsr-bench leaderboard")
    for dataset in dict.fromkeys(c.dataset for c in curves):
        by_label = _by_label(curves, dataset)
        anchor_curve = by_label.get(anchor_label)
        notes = _Notes()
        ranked = []
        for label, curve in by_label.items():
            if label == anchor_label:
                continue
            bds = [_bd_pair(anchor_curve, curve, m, method) for m in metrics]
            ranked.append((bds[0].rate.value, label, bds))
        ranked.sort(key=lambda r: (r[0] is None, r[0] if r[0] is not None else 0.0, r[1]))
        rows = []
        if anchor_curve is not None:
            rows.append([escape_latex(anchor_label) + " (anchor)", *["--"] * 2 * len(metrics)])
        for _, label, bds in ranked:
            rows.append([escape_latex(label),
                         *[_cell(c, notes) for bd in bds for c in (bd.rate, bd.quality)]])
        out += ["", *_table(["Combination", *_columns(metrics)], rows,
                            "l" + "r" * 2 * len(metrics),
                            f"BD against {escape_latex(anchor_label)} on "
                            f"{escape_latex(dataset)}.",
                            f"tab:jcsr-{_label(dataset)}", notes, meta, method)]
    return "\n".join(out) + "\n"


def render_latex_pairs(curves: Sequence[Curve], meta: Mapping,
                       pairs: Sequence[tuple[str, str]], method: str = "pchip") -> str:
    """The paper's Table 1 layout: one row per pair (and dataset), BD-Rate PSNR (%),
    BD-PSNR (dB), BD-Rate MS-SSIM (%), BD-MS-SSIM (dB)."""
    _check_method(method)
    if not pairs:
        raise JcsrError("no pairs given; write --pairs TEST:ANCHOR (each CODEC+SR)")
    labels = {c.label for c in curves}
    for pair in pairs:
        for label in pair:
            if label not in labels:
                raise JcsrError(f"combination {label!r} is not in the results."
                                + did_you_mean(label, labels))
    datasets = list(dict.fromkeys(c.dataset for c in curves))
    notes = _Notes()
    rows = []
    for test, anchor in pairs:
        for dataset in datasets:
            by_label = _by_label(curves, dataset)
            name = [escape_latex(f"{test} vs {anchor}")]
            if len(datasets) > 1:
                name.append(escape_latex(dataset))
            if test not in by_label:
                mark = notes.mark("the test combination was not evaluated on this dataset")
                rows.append([*name, *[mark] * 4])
                continue
            bds = [_bd_pair(by_label.get(anchor), by_label[test], m, method)
                   for m in PAIR_METRICS]
            rows.append([*name, *[_cell(c, notes) for bd in bds for c in (bd.rate, bd.quality)]])
    head = ["Comparison", *(["Dataset"] if len(datasets) > 1 else []), *_columns(PAIR_METRICS)]
    align = "l" * (len(head) - 4) + "rrrr"
    where = escape_latex(", ".join(datasets))
    out = _preamble(meta, "jcsr-bench comparison")
    out += ["", *_table(head, rows, align, f"BD of each test against its anchor on {where}.",
                        "tab:jcsr-pairs", notes, meta, method)]
    return "\n".join(out) + "\n"
