"""Opt-in metric types and metric presets (issue 28): the JPEG AI set is computed only when
named (``--metrics jpeg-ai``, a suite), the default suite's metrics stay as they were."""

from __future__ import annotations

import importlib.util

import pytest

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import RegistryError, load_registry
from jcsr_bench.run.plan import Planner, Settings

JPEG_AI = ["psnr-y709", "psnr-u709", "psnr-v709", "ms-ssim-y", "vif", "fsim", "nlpd",
           "iw-ssim", "vmaf", "psnr-hvs"]


@pytest.fixture
def shipped():
    return load_registry([], manager=PluginManager(entry_points=False))


def _metrics(registry, tmp_path, selected):
    settings = Settings(scale=4, kernel="bicubic", limit=None, device="cpu",
                        output=tmp_path, overwrite="never", fail_fast=False)
    planner = Planner(registry, settings)
    planner.build_metrics(selected, fetch=False)
    return planner, [name for name, _, _ in planner.metrics]


def test_default_metrics_leave_the_opt_in_set_out(shipped, tmp_path):
    planner, names = _metrics(shipped, tmp_path, None)
    assert {"psnr-rgb", "psnr-y", "ms-ssim-rgb"} <= set(names)
    assert not set(names) & {*JPEG_AI, "psnr-hvs-m"}
    considered = names + [s.name for s in planner.skipped]
    assert set(considered) <= {"psnr-rgb", "psnr-y", "ms-ssim-rgb", "lpips", "lpips-vgg",
                               "dists"}


def test_the_jpeg_ai_preset_expands_to_the_ctc_set(shipped, tmp_path):
    _, names = _metrics(shipped, tmp_path, ["jpeg-ai"])
    assert names == JPEG_AI
    _, names = _metrics(shipped, tmp_path, ["psnr-rgb", "jpeg-ai", "psnr-hvs-m"])
    assert names == ["psnr-rgb", *JPEG_AI, "psnr-hvs-m"]


def test_a_suite_may_name_a_preset(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("suites:\n  ctc:\n    datasets: [samples]\n    codecs: [jpeg]\n"
                    "    sr: [bicubic]\n    metrics: [jpeg-ai, psnr-rgb]\n"
                    "presets:\n  metrics:\n    mine: [vif, nlpd]\n")
    registry = load_registry([user], manager=PluginManager(entry_points=False))
    _, names = _metrics(registry, tmp_path, registry.suites["ctc"].metrics)
    assert names == [*JPEG_AI, "psnr-rgb"]
    _, names = _metrics(registry, tmp_path, ["mine"])
    assert names == ["vif", "nlpd"]


def test_a_malformed_preset_section_names_the_file(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("presets:\n  codecs:\n    fast: [jpeg]\n")
    with pytest.raises(RegistryError, match="user.yaml.*only metric presets"):
        load_registry([user], manager=PluginManager(entry_points=False))


def test_a_missing_extra_is_a_missing_piece_with_the_install_line(shipped, tmp_path,
                                                                  monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vmaf_torch" else real(name, *a))
    planner, names = _metrics(shipped, tmp_path, ["jpeg-ai"])
    assert "vmaf" not in names and "vif" in names
    (missing,) = planner.missing
    assert 'pip install "jcsr-bench[jpeg-ai]"' in missing.remedy
    assert "metric vmaf" in missing.needed_by


def test_unknown_metric_in_a_list_still_fails(shipped, tmp_path):
    with pytest.raises(JcsrError, match="unknown metric 'jpeg-aj'"):
        _metrics(shipped, tmp_path, ["jpeg-aj"])
