"""A results folder's reports (``jcsr_bench.report.outputs``): rendered from the store,
written once per content, stale exports removed."""

import io

from fakes import go, make_registry

from jcsr_bench.kit.version import __version__
from jcsr_bench.report.outputs import write_reports


def test_reports_are_a_function_of_the_store_and_stale_exports_go(tmp_path):
    summary = go(make_registry(tmp_path / "reg"), tmp_path, codecs=["fa"],
                 srs=["up", "bicubic"], metrics=["psnr-rgb"])
    out = summary.output
    names = {f.relative_to(out).as_posix() for f in summary.files}
    assert {"results.csv", "leaderboard.md"} <= names
    assert any(n.startswith("json/") for n in names) and any(n.startswith("plots/") for n in names)
    before = {n: (out / n).read_bytes() for n in names}
    stale = out / "json" / "tiny" / "gone+none.json"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("{}")
    stream = io.StringIO()
    again = write_reports(out, stream, f"jcsr-bench {__version__}")  # as a run does
    assert {f.relative_to(out).as_posix() for f in again.files} == names
    assert {n: (out / n).read_bytes() for n in names} == before  # same store, same bytes
    assert not stale.exists() and "removed 1 export(s)" in stream.getvalue()
    assert again.covers == summary.reports
