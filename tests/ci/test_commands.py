"""The regression-tracking commands (``jcsr_bench.ci.commands``) and their overlay plots
(``jcsr_bench.ci.plots``), called directly on a run of fake components."""

import io
import json

import pytest
from fakes import go, make_registry

from jcsr_bench.ci.commands import baseline_command, compare_command
from jcsr_bench.kit.errors import JcsrError


@pytest.fixture
def run_dir(tmp_path):
    registry = make_registry(tmp_path / "reg")
    summary = go(registry, tmp_path, codecs=["fa"], srs=["up", "bicubic"],
                 metrics=["psnr-rgb"])
    assert summary.exit_code == 0
    return summary.output


@pytest.mark.slow
def test_baseline_then_compare_with_itself_is_unchanged(run_dir, tmp_path):
    out = io.StringIO()
    base = tmp_path / "base.json"
    assert baseline_command(run_dir, base, stream=out) == 0
    assert out.getvalue() == f"baseline: 2 combination(s), 12 cell(s) -> {base}\n"
    report = io.StringIO()
    code = compare_command(baseline=base, current=run_dir, run=None, output=None,
                           json_out=tmp_path / "c.json", plots=tmp_path / "plots",
                           stream=report)
    assert code == 0 and report.getvalue().startswith("**jcsr-bench compare: UNCHANGED**")
    assert json.loads((tmp_path / "c.json").read_text())["exit_code"] == 0
    assert list((tmp_path / "plots").glob("*")) == []  # nothing changed: no overlays


def test_compare_needs_exactly_one_of_current_and_run(tmp_path):
    with pytest.raises(JcsrError, match="give CURRENT .* or --run SUITE"):
        compare_command(baseline=tmp_path / "b.json", current=None, run=None, output=None)


def test_a_changed_combination_gets_an_overlay_plot(run_dir, tmp_path):
    base = tmp_path / "base.json"
    baseline_command(run_dir, base, stream=io.StringIO())
    data = json.loads(base.read_text())
    for combination in data["combinations"].values():
        for point in combination["points"]:
            for image in point["images"].values():
                image["values"]["psnr-rgb"] += 1.0  # the baseline was 1 dB better
                image.pop("digests", None)
    base.write_text(json.dumps(data))
    code = compare_command(baseline=base, current=run_dir, run=None, output=None,
                           plots=tmp_path / "plots", stream=io.StringIO())
    assert code == 1
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
