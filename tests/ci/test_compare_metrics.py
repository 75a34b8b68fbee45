"""``compare`` judges every JPEG AI metric on its own axis, each against ``max_bd_rate``;
a suite's ``per_metric`` tolerances name single metrics (issue 28)."""

from __future__ import annotations

import copy
import io

import pytest

from jcsr_bench.ci.baseline import baseline_from_results
from jcsr_bench.ci.compare import Tolerances, compare, tolerances_for
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.run.engine import run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    pytest.importorskip("piq")
    out = tmp_path_factory.mktemp("m28") / "out"
    run(registry=load_registry([], manager=PluginManager(entry_points=False)),
        datasets=["samples-ci"], codecs=["jpeg"], srs=["bicubic", "lanczos"],
        qualities=[10, 30, 60, 90], metrics=["psnr-rgb", "nlpd", "vif"], device="cpu",
        output=out, limit=2, progress=False, stream=io.StringIO())
    return baseline_from_results(out)


def _worse_nlpd(data, factor=1.05):
    """A copy whose NLPD (a distance: higher is worse) is ``factor`` times larger."""
    out = copy.deepcopy(data)
    for combo in out["combinations"].values():
        for point in combo["points"]:
            for cell in point["images"].values():
                cell["values"]["nlpd"] *= factor
                cell["digests"]["payload"] += "-changed"
    return out


@pytest.mark.slow
def test_a_higher_nlpd_is_a_regression_named_by_its_metric(data):
    result = compare(data, _worse_nlpd(data))
    assert result.exit_code == 1
    for combo in result.combinations:
        by_metric = {m.metric: m for m in combo.metrics}
        assert {"psnr-rgb", "nlpd", "vif"} <= set(by_metric)
        assert by_metric["nlpd"].status == "regression"
        assert by_metric["nlpd"].bd_rate > 0.5  # more bits at equal −NLPD
        assert by_metric["psnr-rgb"].status != "regression"
    assert compare(data, _worse_nlpd(data, 1 / 1.05)).verdict == "improvement"


def test_a_suites_per_metric_tolerance_applies_to_that_metric_only(data):
    loose = {"per_metric": {"nlpd": {"max_bd_rate": 1000, "max_quality_drop": 1}}}
    assert compare(data, _worse_nlpd(data), suite_tolerances=loose).exit_code == 0
    tol = tolerances_for("jpeg+bicubic", Tolerances(), loose, {"max_bd_rate": 0.2})
    assert tol.for_metric("nlpd").max_bd_rate == 1000
    assert tol.for_metric("vif").max_bd_rate == 0.2


def test_per_metric_errors_name_the_metric():
    with pytest.raises(JcsrError, match="per_metric.vmf: unknown quality metric.*vmaf"):
        tolerances_for("a+b", Tolerances(), {"per_metric": {"vmf": {"max_bd_rate": 1}}}, {})
    with pytest.raises(JcsrError, match="per_metric.vif: expected"):
        tolerances_for("a+b", Tolerances(), {"per_metric": {"vif": {"exact": True}}}, {})


def test_history_rows_track_each_metric_with_its_sign(data):
    from jcsr_bench.ci.history import _entries_for

    rows = _entries_for(_worse_nlpd(data), "jpeg+bicubic", data)
    nlpd = [r for r in rows if r[1] == "jpeg+bicubic" and r[2] == "nlpd"]
    assert nlpd and nlpd[0][5] > 0.5  # against the previous commit: more bits at equal −NLPD
    assert {r[2] for r in rows} >= {"psnr-rgb", "nlpd", "vif"}
