"""JUnit XML of a comparison: one test case per dataset x combination x metric.

The common JUnit shape (``testsuites`` > ``testsuite`` > ``testcase`` with ``failure``,
``error`` or ``skipped``) that GitLab, Jenkins and GitHub test reporters read natively:
a regression is a ``failure``, an incomparable or removed combination an ``error``, a
new one ``skipped``. Written with the standard library's ElementTree (escaping included).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from jcsr_bench.ci.compare import CombinationResult, Comparison

__all__ = ["render_junit"]


def _cases(c: CombinationResult) -> list[tuple[str, str, str]]:
    """(metric, outcome, message) per test case of one combination."""
    if not c.metrics:
        kind = {"new": "skipped", "pass": "passed", "unchanged": "passed"}.get(c.status, "error")
        if c.status == "regression":
            kind = "failure"
        return [("all metrics", kind, f"{c.status}: {c.reason}")]
    cases = []
    for m in c.metrics:
        status = c.metric_status(m)
        kind = "failure" if status == "regression" else "passed"
        reason = m.reason or (c.reason if status == c.status else "")
        bd = "n/a" if m.bd_rate is None else f"{m.bd_rate:+.3f} %"
        head = "" if "BD-rate" in reason else f"BD-rate {bd}; "  # said once, not twice
        cases.append((m.metric, kind, f"{status}: {head}{reason}".rstrip("; ")))
    return cases


def render_junit(comparison: Comparison) -> str:
    """The XML document as text (UTF-8 declaration included)."""
    by_dataset: dict[str, list[CombinationResult]] = defaultdict(list)
    for c in comparison.ordered():
        by_dataset[c.dataset].append(c)
    root = ET.Element("testsuites", name="jcsr-bench compare")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for dataset, combos in by_dataset.items():
        suite = ET.SubElement(root, "testsuite", name=f"jcsr-bench compare {dataset}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for c in combos:
            for metric, kind, message in _cases(c):
                case = ET.SubElement(suite, "testcase", name=f"{c.label} {metric}",
                                     classname=f"jcsr-bench.{dataset}.{c.label}", time="0")
                counts["tests"] += 1
                if kind == "passed":
                    ET.SubElement(case, "system-out").text = message
                    continue
                counts[{"failure": "failures", "error": "errors",
                        "skipped": "skipped"}[kind]] += 1
                element = ET.SubElement(case, kind, message=message[:500])
                if kind != "skipped":
                    element.set("type", c.status)
                    element.text = message + "".join(f"\nwarning: {w}" for w in c.warnings)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
