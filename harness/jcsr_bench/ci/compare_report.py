"""The Markdown report of ``jcsr-bench compare``: fits a pull-request comment.

The first line is the verdict (what a reviewer reads in a notification or in
``$GITHUB_STEP_SUMMARY``), naming the worst combinations; then one table row per
combination x metric, worst first; then the details (per-point deltas, per-image
BD-rates, timings, environment). Names are escaped (:mod:`.markdown`) where the report
is Markdown (``--markdown``, the step summary); the terminal and CI-log copy
(``markdown=False``) shows them as they are, without character references.
"""

from __future__ import annotations

from collections.abc import Callable

from tabulate import tabulate

from jcsr_bench.ci.compare import CombinationResult, Comparison, MetricResult
from jcsr_bench.report.markdown import escape, plain

__all__ = ["render_compare", "verdict_line"]

_HEADLINE = {"regression": "REGRESSION", "incomparable": "INCOMPARABLE",
             "removed": "INCOMPARABLE", "new": "PASS", "improvement": "IMPROVEMENT",
             "pass": "PASS", "unchanged": "UNCHANGED"}
_NAMED = 3  # combinations named in the verdict line


Esc = Callable[[object], str]


def _name(c: CombinationResult, esc: Esc = escape) -> str:
    return f"{esc(c.dataset)}/{esc(c.label)}"


def _short(c: CombinationResult, esc: Esc = escape) -> str:
    """The headline of a combination's verdict: its worst metric's BD numbers."""
    failing = [m for m in c.metrics if c.metric_status(m) == c.status and m.bd_rate is not None]
    if not failing or any(w for w in c.warnings if "--fail-on-time" in w):
        return esc(c.reason)
    m = max(failing, key=lambda m: m.bd_rate if c.status == "regression" else -m.bd_rate)
    return (f"{esc(m.metric)} BD-rate {m.bd_rate:+.2f} %, BD-quality "
            f"{m.bd_quality:+.3f}")


def verdict_line(comparison: Comparison, esc: Esc = escape) -> str:
    """One line: the verdict, the exit status, and the worst combinations by name."""
    verdict = comparison.verdict
    total = len(comparison.combinations)
    head = f"**jcsr-bench compare: {_HEADLINE[verdict]}** (exit {comparison.exit_code})"
    if comparison.empty_baseline:
        return (f"{head}: the baseline holds no combination, so it judges nothing "
                f"({total} combination(s) not judged); pass --allow-empty-baseline to "
                "accept that")
    if verdict in ("unchanged", "pass", "new"):
        identical = sum(bool(c.identical) for c in comparison.combinations)
        new = sum(c.status == "new" for c in comparison.combinations)
        slow = sum(bool(c.warnings) for c in comparison.combinations)
        return (f"{head}: {total - new} combination(s) compared, {identical} bit-identical, "
                f"none outside tolerance" + (f"; {new} new (not judged)" if new else "")
                + (f"; timing warnings for {slow} (see below)" if slow else ""))
    severe = {"incomparable": ("incomparable", "removed")}.get(verdict, (verdict,))
    worst = [c for c in comparison.ordered() if c.status in severe]
    named = "; ".join(f"{_name(c, esc)} ({_short(c, esc)})" for c in worst[:_NAMED])
    more = f"; and {len(worst) - _NAMED} more" if len(worst) > _NAMED else ""
    return f"{head}: {len(worst)} of {total} combination(s) {verdict}: {named}{more}"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _interval(m: MetricResult) -> str:
    """The interval and how many images it rests on (none on too few: why)."""
    if m.interval is None:
        return f"n/a ({m.interval_note})" if m.interval_note else "n/a"
    return f"[{m.interval[0]:+.2f}, {m.interval[1]:+.2f}] ({m.interval_images} images)"


def _rows(comparison: Comparison, esc: Esc) -> list[list[str]]:
    rows = []
    for c in comparison.ordered():
        if not c.metrics:
            rows.append([c.status, esc(c.dataset), esc(c.label), "-", "-", "-", "-",
                         esc(c.reason)])
            continue
        for m in sorted(c.metrics, key=lambda m: -(m.bd_rate if m.bd_rate is not None
                                                    else -1e9)):
            status = c.metric_status(m)
            note = m.reason or m.bd_note or ("" if c.status != "unchanged" else c.reason)
            rows.append([status, esc(c.dataset), esc(c.label), esc(m.metric),
                         _num(m.bd_rate, "+.3f"), _num(m.bd_quality, "+.4f"), _interval(m),
                         esc(note)])
    return rows


def _details(c: CombinationResult, esc: Esc) -> list[str]:
    lines = [f"#### {_name(c, esc)}: {c.status}", ""]
    tol = c.tolerances
    lines.append(f"Tolerances: BD-rate ≤ {tol.max_bd_rate:g} %, quality drop ≤ "
                 f"{tol.max_quality_drop:g}" + (", exact" if tol.exact else "")
                 + (f", time ≤ x{tol.fail_on_time:g}" if tol.fail_on_time else ""))
    if c.timings:
        lines.append("Timings (current / baseline, mean per image): " + ", ".join(
            f"{k} x{v:.2f}" for k, v in c.timings.items()))
    lines.append("")
    for m in c.metrics:
        table = [[esc(str(p["quality"])), _num(p["bpp_baseline"], ".5f"),
                  _num(p["bpp_current"], ".5f"), _num(p.get("bpp_change_pct"), "+.3f"),
                  _num(p["baseline"], ".4f"), _num(p["current"], ".4f"),
                  _num(p.get("delta"), "+.4f")] for p in m.points]
        lines.append(f"{esc(m.metric)} per point:")
        lines.append("")
        lines.append(tabulate(table, headers=["quality", "bpp base", "bpp now", "bits %",
                                              f"{esc(m.metric)} base",
                                              f"{esc(m.metric)} now", "Δ"],
                              tablefmt="github", disable_numparse=True))
        per_image = ", ".join(f"{esc(k)} {_num(v, '+.3f')}"
                              for k, v in m.image_bd_rates.items())
        lines += ["", f"Per-image BD-rate (%): {per_image}; bootstrap 95 % interval of the "
                  f"mean {_interval(m)}", ""]
    return lines


def render_compare(comparison: Comparison, *, markdown: bool = True) -> str:
    """The whole report; deterministic for given inputs. ``markdown=False``: the copy
    for a terminal or CI log (nothing escaped, no HTML)."""
    esc = escape if markdown else plain
    lines = [verdict_line(comparison, esc), ""]
    lines += [f"> {esc(note)}" if markdown else esc(note) for note in comparison.notes]
    if comparison.notes:
        lines.append("")
    lines.append(tabulate(_rows(comparison, esc), headers=[
        "status", "dataset", "codec+sr", "metric", "BD-rate (%)", "BD-quality",
        "per-image BD-rate 95 % CI (%)", "note"], tablefmt="github", disable_numparse=True))
    warned = [c for c in comparison.ordered() if c.warnings]
    if warned:
        lines += ["", "Timing warnings (machines and load differ; not failures unless "
                  "--fail-on-time):", ""]
        lines += [f"- {_name(c, esc)}: {'; '.join(c.warnings)}" for c in warned]
    lines += ["", f"BD method {comparison.method}; positive BD-rate = more bits than the "
              "baseline at equal quality (a regression); MS-SSIM in dB. Exit status: 0 pass, "
              "unchanged or improvement; 1 regression; 3 incomparable or removed; 2 usage "
              "error.", ""]
    changed = [c for c in comparison.ordered() if c.metrics and c.status != "unchanged"]
    if changed:
        lines += ["<details><summary>Details</summary>" if markdown else "Details:", ""]
        for c in changed:
            lines += _details(c, esc)
        lines += ["</details>", ""] if markdown else []
    b, cur = comparison.baseline_info, comparison.current_info
    for label, info in (("Baseline", b), ("Current", cur)):
        env = info.get("environment") or {}
        lines.append(f"{label}: jcsr-bench {esc(info.get('harness_version'))}, commit "
                     f"{esc((info.get('git_commit') or 'unknown')[:12])}, "
                     f"{esc(env.get('cpu', 'unknown CPU'))}, {esc(env.get('isa', '?'))}, "
                     f"{esc(env.get('threads', '?'))} thread(s), "
                     f"{esc(env.get('device', '?'))}.  ")
    return "\n".join(lines).rstrip() + "\n"
