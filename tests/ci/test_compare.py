"""CI regression tracking: baselines, ``compare`` statuses and exit codes, reports.

Runs are real engine runs on a tiny fake plugin: a quantising codec whose variants are
slightly worse (a dequantiser 3 levels off at one quality), better (mid-bucket
reconstruction) or slower, on four small deterministic images.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import stat
import struct
import subprocess
import tempfile
import time
import types
import xml.etree.ElementTree as ET
import zlib
from html import unescape
from pathlib import Path

import pytest
import torch

from jcsr_bench import hookimpl
from jcsr_bench.ci.baseline import FORMAT, baseline_from_results, load_baseline, save_baseline
from jcsr_bench.ci.compare import Tolerances, bootstrap_interval, compare, tolerances_for
from jcsr_bench.ci.compare_report import render_compare
from jcsr_bench.ci.junit import render_junit
from jcsr_bench.cli.main import main
from jcsr_bench.imaging.lr import lr_for
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.identity import digest, make_identity
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import Registry
from jcsr_bench.run.engine import pixel_hash, run
from jcsr_bench.testing import RegressionError, assert_no_regression, sample_image


class StepCodec:
    """Quantises to ``step * quality``. ``centre`` reconstructs mid-bucket (better at
    the same bits); ``lossy_at`` dequantises 3 levels low at that quality (slightly worse at
    the same bits); ``delay`` slows encoding without changing any output."""

    def __init__(self, step: int = 16, qualities=(1, 2, 3), centre: bool = False,
                 lossy_at: int = 0, delay: float = 0.0):
        self.step, self.centre, self.lossy_at, self.delay = step, centre, lossy_at, delay
        self.identity = make_identity("step-codec", step=step, centre=centre,
                                      lossy_at=lossy_at)
        self.qualities = list(qualities)

    def encode(self, image, quality):
        if self.delay:
            time.sleep(self.delay)
        step = self.step * quality
        h, w = image.shape[1:]
        q = (image.to(torch.int32) // step).to(torch.uint8)
        return struct.pack(">HHBB", h, w, step, quality) + zlib.compress(q.numpy().tobytes())

    def decode(self, data):
        h, w, step, quality = struct.unpack_from(">HHBB", data)
        q = torch.frombuffer(bytearray(zlib.decompress(data[6:])), dtype=torch.uint8)
        out = q.view(3, h, w).to(torch.int32) * step + (step // 2 if self.centre else 0)
        if quality == self.lossy_at:  # a dequantiser 3 levels off at this quality
            out = out - 3
        return out.clamp(0, 255).to(torch.uint8)


class NearestSR:
    def __init__(self, scale: int = 4):
        self.scale = scale
        self.identity = make_identity("nearest-sr", scale=scale)

    def upscale(self, image):
        return image.repeat_interleave(self.scale, 1).repeat_interleave(self.scale, 2)


class Pictures:
    """``n`` deterministic images; ``offset`` swaps in other pictures (same names)."""

    def __init__(self, n: int = 4, offset: int = 0):
        self.images = [(f"img{i}", sample_image(48, 64, seed=i + offset)) for i in range(n)]
        self.identity = digest([pixel_hash(im) for _, im in self.images])

    def __iter__(self):
        return iter(self.images)

    def __len__(self):
        return len(self.images)


def _plugin():
    plugin = types.ModuleType("jcsr_compare_fixture")

    @hookimpl
    def register_codecs(register):
        register("step-codec", StepCodec, params={"step": int, "qualities": list,
                                                  "centre": bool, "lossy_at": int,
                                                  "delay": float})

    @hookimpl
    def register_sr_models(register):
        register("nearest-sr", NearestSR, params={"scale": int})

    @hookimpl
    def register_datasets(register):
        register("pictures", Pictures, params={"n": int, "offset": int})

    plugin.register_codecs = register_codecs
    plugin.register_sr_models = register_sr_models
    plugin.register_datasets = register_datasets
    return plugin


def _registry(folder: Path, codec: str = "{type: step-codec}",
              dataset: str = "{type: pictures}") -> Registry:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "registry.yaml"
    path.write_text(f"codecs:\n  sc: {codec}\n  other: {{type: step-codec, step: 18}}\n"
                    f"sr:\n  up: {{type: nearest-sr}}\ndatasets:\n  pics: {dataset}\n")
    registry = Registry(PluginManager(entry_points=False, extra_plugins=(_plugin(),)))
    registry.add_file(path)
    return registry


def _run(tmp_path: Path, name: str, codecs=("sc", "other"), **registry_kw) -> Path:
    out = tmp_path / name
    summary = run(registry=_registry(tmp_path / f"reg-{name}", **registry_kw),
                  datasets=["pics"], codecs=list(codecs), srs=["up", "none"], output=out,
                  progress=False, stream=io.StringIO(), device="cpu",
                  cache_root=tmp_path / f"cache-{name}")
    assert summary.exit_code == 0
    return out


VARIANTS = {
    "base": {}, "same": {},
    "worse": {"codec": "{type: step-codec, lossy_at: 2}"},
    "better": {"codec": "{type: step-codec, centre: true}"},
    "swap": {"dataset": "{type: pictures, offset: 10}"},
    "only-sc": {"codecs": ("sc",)},
    "fast": {"codec": "{type: step-codec, delay: 0.006}"},
    "slow": {"codec": "{type: step-codec, delay: 0.03}"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each variant's results folder, run once per module (runs are deterministic)."""
    root = tmp_path_factory.mktemp("runs")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            with pytest.MonkeyPatch.context() as patch:  # the run's own RD plots: not
                patch.setattr("jcsr_bench.report.plots.plot_rd", lambda *a, **k: [])  # tested here
                made[name] = _run(root, name, **VARIANTS[name])
        return made[name]

    return get


@pytest.fixture
def baseline(tmp_path, runs) -> Path:
    path = tmp_path / "baseline.json"
    save_baseline(runs("base"), path)
    return path


def _compare(capsys, *argv: str) -> tuple[int, str]:
    code = main(["compare", *map(str, argv)])
    return code, capsys.readouterr().out


# -- baselines -------------------------------------------------------------------------------
def test_baseline_file_is_sorted_versioned_and_complete(baseline):
    text = baseline.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["format"] == FORMAT and data["schema"] == 1
    assert data["harness_version"] and data["conventions"] and data["conventions_id"]
    assert data["git_commit"] is None or len(data["git_commit"]) == 40
    env = data["environment"]
    assert {"cpu", "isa", "threads", "device", "versions"} <= set(env)
    assert {"torch", "compressai", "Pillow", "Pillow:jpg"} <= set(env["versions"])
    assert data["datasets"]["pics"]["images"] == ["img0", "img1", "img2", "img3"]
    assert data["datasets"]["pics"]["identity"] == Pictures().identity
    assert set(data["combinations"]) == {"pics/sc+up", "pics/sc+none", "pics/other+up",
                                         "pics/other+none"}
    combo = data["combinations"]["pics/sc+up"]
    assert combo["codec_identity"] == StepCodec().identity
    assert [p["quality"] for p in combo["points"]] == [1, 2, 3]
    cell = combo["points"][0]["images"]["img0"]
    assert set(cell["digests"]) == {"payload", "decoded", "output"}
    image = sample_image(48, 64, seed=0)
    assert cell["values"]["bits"] == 8 * len(StepCodec().encode(lr_for(image, 4, "matlab"), 1))
    assert "psnr-rgb" in cell["values"] and "encode_s" in cell["timings"]
    assert set(data["metrics"]) >= {"psnr-rgb", "psnr-y", "ms-ssim-rgb"}


def test_a_results_folder_is_accepted_wherever_a_baseline_is(tmp_path, capsys, runs):
    base, cur = runs("base"), runs("same")
    code, out = _compare(capsys, base, cur)
    assert code == 0 and out.startswith("**jcsr-bench compare: UNCHANGED** (exit 0)")
    assert load_baseline(base / "results.sqlite")["combinations"].keys() == \
        baseline_from_results(base)["combinations"].keys()


# -- statuses and exit codes (the acceptance fixtures) ---------------------------------------
def test_unchanged_tree_gives_unchanged_and_exit_0(tmp_path, baseline, capsys, runs):
    code, out = _compare(capsys, baseline, runs("same"))
    assert code == 0
    first = out.splitlines()[0]
    assert first == ("**jcsr-bench compare: UNCHANGED** (exit 0): 4 combination(s) compared, "
                     "4 bit-identical, none outside tolerance")


def test_slightly_worse_codec_is_a_named_regression_exit_1(tmp_path, baseline, capsys, runs):
    current = runs("worse")
    code, out = _compare(capsys, baseline, current, "--junit", tmp_path / "j.xml",
                         "--plots", tmp_path / "plots")
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("**jcsr-bench compare: REGRESSION** (exit 1): 2 of 4 "
                            "combination(s) regression: pics/sc+")
    assert "pics/sc+up" in first and "pics/sc+none" in first and "BD-rate +" in first
    assert "other+" not in first
    # the worst rows come first in the table, and only the changed combinations are plotted
    table = [line for line in out.splitlines() if line.startswith("| ")][1:]
    assert table[1].split("|")[1].strip() == "regression"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "compare-pics-sc+none.png", "compare-pics-sc+none.svg", "compare-pics-sc+up.png",
        "compare-pics-sc+up.svg"]


def test_better_codec_is_an_improvement_exit_0(tmp_path, baseline, capsys, runs):
    code, out = _compare(capsys, baseline, runs("better"))
    assert code == 0
    assert out.startswith("**jcsr-bench compare: IMPROVEMENT** (exit 0): 2 of 4 "
                          "combination(s) improvement: pics/sc+")


def test_dataset_swap_is_incomparable_exit_3(tmp_path, baseline, capsys, runs):
    current = runs("swap")
    code, out = _compare(capsys, baseline, current, "--junit", tmp_path / "j.xml")
    assert code == 3
    first = out.splitlines()[0]
    assert first.startswith("**jcsr-bench compare: INCOMPARABLE** (exit 3): 4 of 4")
    assert "dataset pics: identity differs" in first
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert int(root.get("errors")) == 4 and int(root.get("failures")) == 0


def test_removed_combination_is_exit_3_and_new_one_is_not_judged(tmp_path, baseline, capsys, runs):
    code, out = _compare(capsys, baseline, runs("only-sc"))
    assert code == 3 and "removed" in out.splitlines()[0]
    code, out = _compare(capsys, runs("only-sc"), runs("base"))
    assert code == 0 and "2 new (not judged)" in out.splitlines()[0]


@pytest.mark.slow
def test_pure_slowdown_only_warns_unless_fail_on_time(tmp_path, capsys, runs):
    fast = runs("fast")
    slow = runs("slow")
    code, out = _compare(capsys, fast, slow)
    assert code == 0
    assert out.startswith("**jcsr-bench compare: UNCHANGED**")
    assert out.splitlines()[0].endswith("; timing warnings for 2 (see below)")
    assert "- pics/sc+up: encode_s x" in out and " slower" in out
    code, out = _compare(capsys, fast, slow, "--fail-on-time", "2")
    assert code == 1
    first = unescape(out.splitlines()[0])  # names and reasons are escaped for Markdown
    assert "pics/sc+up (encode_s x" in first and "> --fail-on-time 2" in first


# -- exactness and fingerprints --------------------------------------------------------------
def _shifted(data: dict, factor_by_image: dict[str, float]) -> dict:
    """A copy whose bits/bpp are scaled per image (outputs otherwise unchanged)."""
    out = copy.deepcopy(data)
    for combo in out["combinations"].values():
        for point in combo["points"]:
            for name, cell in point["images"].items():
                for key in ("bits", "bpp", "bpp_lr"):
                    cell["values"][key] *= factor_by_image[name]
                cell["digests"]["payload"] += "-changed"
    return out


def test_exact_fails_any_change_only_when_fingerprints_match(baseline):
    data = load_baseline(baseline)
    tiny = _shifted(data, dict.fromkeys(data["datasets"]["pics"]["images"], 1.0001))
    assert compare(data, tiny).exit_code == 0  # +0.01 % bits: within tolerance
    strict = compare(data, tiny, tolerances=Tolerances(exact=True))
    assert strict.exit_code == 1 and strict.verdict == "regression"
    assert "--exact" in strict.combinations[0].reason
    other_machine = copy.deepcopy(tiny)
    isa = data["environment"]["isa"]  # another ISA level than this machine's
    other_machine["environment"]["isa"] = "AVX512" if isa != "AVX512" else "AVX2"
    fallback = compare(data, other_machine, tolerances=Tolerances(exact=True))
    assert fallback.exit_code == 0 and fallback.verdict == "pass"
    assert "Fell back to tolerances" in fallback.notes[0] and "isa" in fallback.notes[0]
    assert "--exact not applied" in fallback.combinations[0].reason
    # bit-identical outputs on another machine: judged by tolerances, never "unchanged"
    moved = copy.deepcopy(data)
    moved["environment"]["threads"] += 1
    result = compare(data, moved)
    assert result.verdict == "pass" and "bit-identical" in result.combinations[0].reason
    assert "Fell back to tolerances" in render_compare(result)


# -- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_identical_curves_give_zero_interval(baseline):
    data = load_baseline(baseline)
    for combo in compare(data, copy.deepcopy(data)).combinations:
        for m in combo.metrics:
            assert m.interval == (0.0, 0.0)
            assert set(m.image_bd_rates.values()) == {0.0}


def test_bootstrap_interval_contains_a_known_per_image_shift(baseline):
    data = load_baseline(baseline)
    shifts = {"img0": 1.01, "img1": 1.02, "img2": 1.03, "img3": 1.04}
    result = compare(data, _shifted(data, shifts))
    m = result.combinations[0].metrics[0]
    for name, factor in shifts.items():  # rate x k -> BD-rate (k - 1) x 100 %, per image
        assert m.image_bd_rates[name] == pytest.approx((factor - 1) * 100, abs=1e-9)
    low, high = m.interval
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert result.exit_code == 1  # +2.5 % more bits is outside the 0.5 pp tolerance
    assert compare(data, _shifted(data, shifts)).combinations[0].metrics[0].interval == \
        m.interval  # seeded


def test_bootstrap_interval_is_seeded_and_sane():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    low, high = bootstrap_interval(values, seed=3)
    assert 1.0 <= low < 3.0 < high <= 5.0
    assert bootstrap_interval([2.5, 2.5], seed=0) == (2.5, 2.5)


# -- reports -------------------------------------------------------------------------------------
def _check_junit_shape(root: ET.Element) -> None:
    """The common JUnit XML shape (as GitLab/Jenkins read it)."""
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        cases = list(suite)
        assert all(c.tag == "testcase" and c.get("name") and c.get("classname")
                   for c in cases)
        assert int(suite.get("tests")) == len(cases)
        for kind, attr in (("failure", "failures"), ("error", "errors"),
                           ("skipped", "skipped")):
            assert int(suite.get(attr)) == sum(c.find(kind) is not None for c in cases)
        for case in cases:
            assert {child.tag for child in case} <= {"failure", "error", "skipped",
                                                     "system-out"}
    for attr in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(attr)) == sum(int(s.get(attr)) for s in root)


def test_junit_has_one_case_per_dataset_combination_metric_and_parses_back(tmp_path,
                                                                          baseline, runs):
    current = runs("worse")
    comparison = compare(load_baseline(baseline), load_baseline(current))
    root = ET.fromstring(render_junit(comparison))
    _check_junit_shape(root)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    # 4 combinations x the metrics measured (psnr-rgb, psnr-y; ms-ssim is n/a at 48 px)
    assert len(cases) == 8
    failing = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failing == {"sc+up psnr-rgb", "sc+up psnr-y", "sc+none psnr-rgb", "sc+none psnr-y"}
    # a metric that is fine inside a regressed combination passes on its own
    data = load_baseline(baseline)
    one = copy.deepcopy(data)
    for point in one["combinations"]["pics/sc+up"]["points"][1:2]:
        for cell in point["images"].values():
            cell["values"]["psnr-rgb"] -= 0.2
    root = ET.fromstring(render_junit(compare(data, one)))
    failing = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
    assert failing == {"sc+up psnr-rgb"}
    failure = cases["sc+up psnr-rgb"].find("failure")
    assert failure.get("type") == "regression" and "BD-rate +" in failure.get("message")


def test_json_and_markdown_reports(tmp_path, baseline, capsys, runs):
    current = runs("worse")
    code, out = _compare(capsys, baseline, current, "--json", tmp_path / "c.json",
                         "--markdown", tmp_path / "c.md")
    markdown = (tmp_path / "c.md").read_text()
    assert markdown.splitlines()[0] == out.splitlines()[0]
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["verdict"] == "regression" and data["exit_code"] == code == 1
    first = data["combinations"][0]
    assert first["status"] == "regression" and first["label"].startswith("sc+")
    point = first["metrics"][0]["points"][1]
    assert point["quality"] == 2 and point["delta"] < 0 and point["bpp_change_pct"] == 0
    assert "<details><summary>Details</summary>" in markdown
    assert "<details>" not in out and "\nDetails:\n" in out  # the terminal copy: no HTML


def test_terminal_copy_has_no_entities_and_names_the_images_that_differ(tmp_path, baseline,
                                                                        capsys):
    data = load_baseline(baseline)
    cur = copy.deepcopy(data)
    cur["datasets"]["pics"]["images"] = ["img0", "img1", "img2", "new*9"]
    cur["run"]["suite"] = "mine"
    (tmp_path / "cur.json").write_text(json.dumps(cur))
    code, out = _compare(capsys, baseline, tmp_path / "cur.json", "--markdown",
                         tmp_path / "c.md")
    assert code == 3 and "&#" not in out and "&amp;" not in out
    assert ("images differ (missing from the current run: img3; added in the current run: "
            "new*9)") in out
    assert "['img0'" not in out  # not both whole lists
    assert "Suites differ: baseline from None" not in out
    assert f"Suites differ: baseline from {data['run']['suite'] or 'no suite'}, current " \
        "from mine." in out
    assert "new&#42;9" in (tmp_path / "c.md").read_text()  # escaped where Markdown is written


def test_per_image_interval_says_its_images_and_needs_three(baseline):
    data = load_baseline(baseline)
    shifts = {"img0": 1.01, "img1": 1.02, "img2": 1.03, "img3": 1.04}
    cur = _shifted(data, shifts)
    m = compare(data, cur).combinations[0].metrics[0]
    assert m.interval_images == 4 and "(4 images)" in render_compare(compare(data, cur))
    for name in ("img1", "img2", "img3"):  # two per-image BD-rates n/a: one image left
        for point in cur["combinations"]["pics/sc+up"]["points"][1:]:
            point["images"][name]["values"]["psnr-rgb"] = None
    result = compare(data, cur)
    m = next(c for c in result.combinations if c.label == "sc+up").metrics[0]
    assert m.metric == "psnr-rgb" and m.interval is None and m.interval_images == 1
    assert "1 of 4 image(s) have a per-image BD-rate; at least 3 are needed" in \
        render_compare(result)


def test_bd_errors_say_baseline_and_junit_says_bd_rate_once(baseline, runs):
    from jcsr_bench.ci.compare import bd_pair

    assert "baseline curve has 1 point(s)" in bd_pair(([1.0], [30.0]), ([1.0, 2.0],
                                                      [30.0, 31.0]), "pchip")[2]
    comparison = compare(load_baseline(baseline), load_baseline(runs("worse")))
    root = ET.fromstring(render_junit(comparison))
    messages = [f.get("message") for f in root.iter("failure")]
    assert messages and all(m.count("BD-rate") == 1 for m in messages), messages


# -- tolerances ------------------------------------------------------------------------------------
def test_tolerance_precedence_and_errors():
    suite = {"max_bd_rate": 1.0, "max_quality_drop": 0.1,
             "per_combination": {"webp+lanczos": {"max_bd_rate": 3.0}}}
    tol = tolerances_for("jpeg+bicubic", Tolerances(), suite, {"max_bd_rate": 0.2})
    assert (tol.max_bd_rate, tol.max_quality_drop) == (0.2, 0.1)
    tol = tolerances_for("webp+lanczos", Tolerances(), suite, {"max_bd_rate": 0.2})
    assert tol.max_bd_rate == 3.0
    with pytest.raises(JcsrError, match="unknown tolerance 'max_bd'.*allowed"):
        tolerances_for("a+b", Tolerances(), {"max_bd": 1}, {}, "reg.yaml:3: suites.ci")
    with pytest.raises(JcsrError, match="max_bd_rate must be a number >= 0, got -1"):
        Tolerances().with_overrides({"max_bd_rate": -1}, "x")


def test_cli_tolerance_flag_turns_a_regression_into_a_pass(tmp_path, baseline, capsys, runs):
    current = runs("worse")
    data = compare(load_baseline(baseline), load_baseline(current))
    worst = max(m.bd_rate for c in data.combinations for m in c.metrics)
    worst_drop = -min(m.bd_quality for c in data.combinations for m in c.metrics)
    code, _ = _compare(capsys, baseline, current, "--max-bd-rate", f"{worst + 0.01}",
                       "--max-quality-drop", f"{worst_drop + 0.01}")
    assert code == 0


# -- usage, missing baselines, updates ----------------------------------------------------------
def test_usage_errors_exit_2(tmp_path, baseline, capsys):
    assert main(["compare", str(baseline)]) == 2
    assert "give CURRENT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(baseline), str(baseline), "--max-bd-rate", "-1"])
    assert exc.value.code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["compare", str(bad), str(baseline)]) == 2
    assert "is not a jcsr-bench baseline" in capsys.readouterr().err


def test_missing_baseline_is_exit_3_and_never_created(tmp_path, baseline, capsys):
    missing = tmp_path / "none" / "ci.json"
    assert main(["compare", str(missing), str(baseline)]) == 3
    assert "no baseline at" in capsys.readouterr().err and not missing.exists()
    assert main(["compare", str(missing), str(baseline), "--update-baseline"]) == 0
    assert load_baseline(missing) == load_baseline(baseline)


def test_update_baseline_is_explicit_and_atomic(tmp_path, baseline, capsys, runs):
    current = runs("better")
    before = baseline.read_text()
    assert main(["compare", str(baseline), str(current)]) == 0
    assert baseline.read_text() == before  # a plain compare never writes
    assert main(["compare", str(baseline), str(current), "--update-baseline"]) == 0
    assert load_baseline(baseline)["combinations"] == baseline_from_results(current)[
        "combinations"]
    assert [p.name for p in baseline.parent.glob(".baseline.json.*")] == []
    capsys.readouterr()
    assert _compare(capsys, baseline, current)[0] == 0


def test_baseline_save_cli(tmp_path, capsys, runs):
    results = runs("base")
    assert main(["baseline", "save", "--results", str(results), "--out",
                 str(tmp_path / "b.json")]) == 0
    assert "4 combination(s), 48 cell(s)" in capsys.readouterr().out
    assert main(["baseline", "save", "--results", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "c.json")]) == 2
    assert "no results store" in capsys.readouterr().err


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_baseline_is_written_with_the_users_umask(tmp_path, runs, umask, mode):
    before = os.umask(umask)
    try:
        save_baseline(runs("base"), tmp_path / "b.json")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == mode


def test_a_failed_compare_run_removes_its_temporary_folder(tmp_path, baseline, capsys,
                                                          monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def fails(*args, **kwargs):
        Path(args[2]).mkdir(exist_ok=True)
        (Path(args[2]) / "results.sqlite").write_text("partial")
        raise JcsrError("2 missing piece(s), nothing was computed")

    monkeypatch.setattr("jcsr_bench.ci.commands.run_suite", fails)
    assert main(["compare", str(baseline), "--run", "ci"]) == 2
    assert "missing piece" in capsys.readouterr().err
    assert list(temp.iterdir()) == []
    kept = tmp_path / "kept"  # an --output folder the user named is theirs: kept
    assert main(["compare", str(baseline), "--run", "ci", "--output", str(kept)]) == 2
    assert (kept / "results.sqlite").exists()


# -- the testing helper ----------------------------------------------------------------------------
def test_assert_no_regression(tmp_path, baseline, runs):
    same = runs("same")
    comparison = assert_no_regression(same, baseline)
    assert comparison.verdict == "unchanged"
    worse = runs("worse")
    with pytest.raises(RegressionError, match=r"^\*\*jcsr-bench compare: REGRESSION"):
        assert_no_regression(worse, baseline)
    assert_no_regression(worse, baseline, max_bd_rate=math.inf, max_quality_drop=math.inf)


# -- history ---------------------------------------------------------------------------------------
def test_history_of_three_commits_gives_a_chart_and_a_table(tmp_path, runs, capsys):
    store, charts = tmp_path / "history.sqlite", tmp_path / "charts"
    commits = {"a" * 40: "base", "b" * 40: "worse", "c" * 40: "same"}  # regressed, fixed
    for sha, variant in commits.items():
        assert main(["history", "add", "--results", str(runs(variant)), "--commit", sha,
                     "--anchor", "other+up", "--store", str(store)]) == 0
        assert f"history: {sha[:12]} added" in capsys.readouterr().out
    assert main(["history", "show", "--store", str(store), "--out", str(charts)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| `")]
    assert [line.split("|")[1].strip() for line in table] == [f"`{sha[:12]}`"
                                                              for sha in commits]
    assert out.splitlines()[0] == (
        "### pics: BD-rate (psnr-rgb) vs anchor, %; in parentheses: BD-rate vs the previous "
        "commit's curve (not the difference of the two numbers shown)")
    assert sorted(p.name for p in charts.iterdir()) == ["history-pics-psnr-rgb.png",
                                                        "history-pics-psnr-rgb.svg"]
    from jcsr_bench.ci.history import entries

    shas, rows, anchor = entries(store)
    assert shas == list(commits) and anchor == "other+up"
    got = {(r["commit"][0], r["combination"]): r for r in rows if r["metric"] == "psnr-rgb"}
    assert got[("a", "sc+up")]["bd_rate_previous"] is None
    assert got[("a", "other+up")]["bd_rate_anchor"] == 0.0
    # BD vs the previous commit is what compare computes between the two runs
    step = compare(load_baseline(runs("base")), load_baseline(runs("worse")))
    expected = next(m.bd_rate for c in step.combinations if c.label == "sc+up"
                    for m in c.metrics if m.metric == "psnr-rgb")
    assert got[("b", "sc+up")]["bd_rate_previous"] == pytest.approx(expected, abs=1e-9)
    assert expected > 0.5
    assert got[("b", "sc+up")]["bd_rate_anchor"] > got[("a", "sc+up")]["bd_rate_anchor"] + 0.5
    assert got[("c", "sc+up")]["bd_rate_anchor"] == got[("a", "sc+up")]["bd_rate_anchor"]
    assert got[("c", "sc+up")]["bd_rate_previous"] < -0.5
    assert got[("c", "other+up")]["bd_rate_previous"] == 0.0
    # adding a commit again replaces its data in place (order kept)
    assert main(["history", "add", "--results", str(runs("base")), "--commit", "b" * 40,
                 "--anchor", "other+up", "--store", str(store)]) == 0
    shas, rows, _ = entries(store)
    assert shas == list(commits)
    again = {(r["commit"][0], r["combination"]): r for r in rows if r["metric"] == "psnr-rgb"}
    assert again[("b", "sc+up")]["bd_rate_previous"] == 0.0


def test_history_gives_the_reason_of_a_combination_na_at_every_commit(tmp_path, runs,
                                                                     capsys, monkeypatch):
    data = load_baseline(runs("base"))
    for point in data["combinations"]["pics/sc+none"]["points"][1:]:
        for cell in point["images"].values():  # one point left: no curve to compare
            cell["values"]["psnr-rgb"] = None
            cell.setdefault("reasons", {})["psnr-rgb"] = "planted n/a"  # others keep theirs
    (tmp_path / "b.json").write_text(json.dumps(data))
    store = tmp_path / "h.sqlite"
    for sha in ("a" * 40, "b" * 40):
        assert main(["history", "add", "--results", str(tmp_path / "b.json"), "--commit",
                     sha, "--anchor", "other+up", "--store", str(store)]) == 0
    drawn = {}
    monkeypatch.setattr("jcsr_bench.ci.history.plot_history",
                        lambda series, *a, **k: drawn.update(series) or [])
    assert main(["history", "show", "--store", str(store), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("- sc+none: n/a at every commit: sc+none curve has 1 point(s); the pchip method "
            "needs at least 2") in out
    legend = [label for label in drawn if label.startswith("sc+none")]
    assert legend == ["sc+none: n/a at every commit (sc+none curve has 1 point(s); the pchip "
                      "method needs at least 2)"]
    assert "sc+up" in drawn  # defined combinations keep their plain names


def test_history_errors_name_the_remedy(tmp_path, runs, capsys):
    assert main(["history", "show", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "history add --results" in capsys.readouterr().err
    assert main(["history", "add", "--results", str(runs("base")), "--commit", "abc",
                 "--store", str(tmp_path / "h.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "the run has no anchor" in err and "give --anchor CODEC+SR" in err


# -- the project's own CI --------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]


def test_ci_suite_is_offline_and_the_committed_baseline_is_comparable(tmp_path):
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench.run.engine import CONVENTIONS
    from jcsr_bench.run.plan import Planner, Settings
    from jcsr_bench_plugins.datasets.sources import SamplesDataset

    registry = load_registry()
    suite = registry.suites["ci"]
    plan = run(registry=registry, suite="ci", output=tmp_path / "out", dry_run=True,
               device="cpu", progress=False, stream=io.StringIO())
    # nothing needs a download: no optional metric weights either (a fixed metric set)
    assert plan.skipped == [] and plan.cells == 144
    data = load_baseline(REPO / "leaderboards" / "baselines" / "ci.json")
    assert data["run"]["suite"] == "ci" and data["run"]["anchor"] == "jpeg+bicubic"
    assert set(data["combinations"]) == {f"samples-ci/{c}+{s}" for c in suite.codecs
                                         for s in suite.sr}
    for combo in data["combinations"].values():
        assert [p["quality"] for p in combo["points"]] == suite.qualities[combo["codec"]]
        assert combo["codec_identity"] == registry.build("codecs", combo["codec"]).identity
    params = registry.resolve("datasets", "samples-ci").params
    assert data["datasets"]["samples-ci"] == {
        "identity": SamplesDataset(names=params["names"], crop=params["crop"]).identity,
        "images": params["names"]}
    assert data["conventions_id"] == digest(CONVENTIONS)
    planner = Planner(registry, Settings(4, "matlab", None, "cpu", tmp_path, "missing", False))
    planner.build_metrics(suite.metrics)
    assert suite.metrics == ["psnr-rgb", "psnr-y", "ms-ssim-rgb"]
    assert data["metrics"] == {name: identity for name, _, identity in planner.metrics}
    assert suite.tolerances == {"max_bd_rate": 0.5, "max_quality_drop": 0.02}


def test_ci_script_compares_the_ci_suite_against_the_committed_baseline():
    script = (REPO / ".ci" / "run").read_text()
    lines = [line.strip() for line in script.splitlines()]
    assert "set -euo pipefail" in lines
    assert lines.index("set -euo pipefail") < next(
        i for i, line in enumerate(lines) if "jcsr-bench compare" in line)
    command = " ".join(script.split("jcsr-bench compare", 1)[1].split("\\\n"))
    assert command.split()[0] == "leaderboards/baselines/ci.json"
    assert "--run ci" in command and "--offline" in command and "--exact" not in command
    assert "--update-baseline" not in command  # CI never writes the baseline


def test_the_suites_tolerances_and_per_combination_overrides_apply(tmp_path, runs, capsys):
    files = {}
    for name in ("base", "worse"):
        data = load_baseline(runs(name))
        data["run"]["suite"] = "ci"  # as if both runs came from the `ci` suite
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(data))
    user = tmp_path / "user.yaml"
    user.write_text("suites:\n  ci:\n    datasets: [samples-ci]\n    codecs: [jpeg]\n"
                    "    sr: [bicubic]\n    tolerances:\n      max_bd_rate: 50\n"
                    "      max_quality_drop: 5\n      per_combination:\n"
                    "        sc+up: {max_bd_rate: 0.5, max_quality_drop: 0.02}\n")
    code, out = _compare(capsys, files["base"], files["worse"], "--registry", user)
    assert code == 1
    first = out.splitlines()[0]
    assert "1 of 4 combination(s) regression: pics/sc+up" in first and "sc+none" not in first
    user.write_text(user.read_text().replace("max_bd_rate: 50", "max_bd: 50"))
    assert main(["compare", str(files["base"]), str(files["worse"]), "--registry",
                 str(user)]) == 2
    assert "suites.ci.tolerances: unknown tolerance 'max_bd'" in capsys.readouterr().err


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["combinations"]["pics/sc+up"]["points"].pop(), "qualities differ"),
    (lambda d: d["metrics"].update({"psnr-rgb": "other"}), "metric definitions differ: psnr-rgb"),
    (lambda d: d.update(conventions_id="x"), "metric conventions differ"),
    (lambda d: d["run"].update(kernel="pil"), "kernel differs"),
    (lambda d: d["datasets"]["pics"]["images"].reverse(), "images differ"),
])
def test_incomparable_says_which(baseline, change, reason):
    data = load_baseline(baseline)
    other = copy.deepcopy(data)
    change(other)
    result = compare(data, other)
    assert result.exit_code == 3
    assert any(c.status == "incomparable" and reason in c.reason for c in result.combinations)


def test_a_value_lost_in_the_current_run_is_a_regression(baseline):
    data = load_baseline(baseline)
    lost = copy.deepcopy(data)
    cell = lost["combinations"]["pics/sc+up"]["points"][1]["images"]["img2"]
    cell["status"], cell["error"] = "error", "SR up: boom"
    result = compare(data, lost)
    sc_up = next(c for c in result.combinations if c.label == "sc+up")
    assert result.exit_code == 1 and sc_up.status == "regression"
    assert "n/a in the current run: quality 2: img2 failed: SR up: boom" in sc_up.reason


def test_undefined_bd_is_judged_point_by_point(baseline):
    data = load_baseline(baseline)
    worse = copy.deepcopy(data)
    point = worse["combinations"]["pics/sc+up"]["points"][1]  # q2 below q3: not monotonic
    for cell in point["images"].values():
        cell["values"]["psnr-rgb"] -= 6.0
    result = compare(data, worse)
    m = next(m for c in result.combinations if c.label == "sc+up" for m in c.metrics
             if m.metric == "psnr-rgb")
    assert m.bd_rate is None and "not monotonic" in m.bd_note
    assert m.status == "regression" and m.reason.startswith("quality 2: -6.0000 at +0.00 % bits")


def test_update_baseline_keeps_the_comparisons_exit_status(tmp_path, baseline, runs):
    assert main(["compare", str(baseline), str(runs("worse")), "--update-baseline"]) == 1
    assert load_baseline(baseline)["combinations"] == load_baseline(runs("worse"))[
        "combinations"]


def test_junit_marks_new_skipped_and_removed_as_errors(runs):
    base, fewer = load_baseline(runs("base")), load_baseline(runs("only-sc"))
    for old, new, kind in ((base, fewer, "error"), (fewer, base, "skipped")):
        root = ET.fromstring(render_junit(compare(old, new)))
        _check_junit_shape(root)
        marked = {c.get("name") for c in root.iter("testcase") if c.find(kind) is not None}
        assert marked == {"other+up all metrics", "other+none all metrics"}


def test_history_commit_defaults_to_the_one_recorded(tmp_path, runs):
    from jcsr_bench.ci.baseline import git_commit
    from jcsr_bench.ci.history import add_run

    recorded = load_baseline(runs("base"))["git_commit"]
    assert recorded == git_commit(REPO)
    sha, count = add_run(runs("base"), store=tmp_path / "h.sqlite", anchor="other+up")
    assert sha == recorded and count == 8  # 4 combinations x psnr-rgb, psnr-y


def test_results_record_the_commit_for_commands_run_outside_the_repository(tmp_path,
                                                                           monkeypatch):
    from jcsr_bench.ci.history import add_run
    from jcsr_bench.results.store import load_curves

    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    elsewhere.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    monkeypatch.chdir(repo)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("jcsr_bench.report.plots.plot_rd", lambda *a, **k: [])
        results = _run(tmp_path, "in-repo", codecs=("sc",))
    assert load_curves(results)[1]["git_commit"] == sha
    monkeypatch.chdir(elsewhere)  # not a repository: git knows no commit here
    save_baseline(results, tmp_path / "b.json")
    assert load_baseline(tmp_path / "b.json")["git_commit"] == sha
    assert add_run(results, store=tmp_path / "h.sqlite", anchor="sc+up")[0] == sha
    assert compare(load_baseline(results), load_baseline(results)).current_info[
        "git_commit"] == sha


def test_ci_docs_examples_are_valid_and_use_the_committed_baseline():
    import yaml

    section = (REPO / "docs" / "ci.md").read_text()  # the page: one topic, CI tracking
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]
    workflows = [yaml.safe_load(b) for b in blocks]
    github = next(w for w in workflows if "jobs" in w)
    gitlab = next(w for w in workflows if "rd-regression" in w)
    steps = github["jobs"]["compare"]["steps"]
    commands = [s.get("run", "") for s in steps] + gitlab["rd-regression"]["script"]
    compares = [c for c in commands if "jcsr-bench compare" in c]
    assert len(compares) == 2
    for command in compares:
        args = command.split("jcsr-bench compare", 1)[1].split()
        assert args[0] == "leaderboards/baselines/ci.json" and "--run" in args
        assert {"--markdown", "--junit", "--plots"} <= set(args)
    assert gitlab["rd-regression"]["artifacts"]["reports"]["junit"] == "compare.xml"
    assert gitlab["rd-regression"]["cache"]["paths"] == [".jcsr-cache/"]
    assert any("actions/cache" in s.get("uses", "") for s in steps)
    assert "JCSR_BENCH_CACHE" in github["jobs"]["compare"]["env"]


def test_compare_run_runs_the_suite_first(tmp_path, baseline, capsys):
    from jcsr_bench.testing import plugin_manager

    user = tmp_path / "suite.yaml"
    user.write_text("codecs:\n  sc: {type: step-codec}\n  other: {type: step-codec, step: 18}\n"
                    "sr:\n  up: {type: nearest-sr}\ndatasets:\n  pics: {type: pictures}\n"
                    "suites:\n  mine:\n    datasets: [pics]\n    codecs: [sc, other]\n"
                    "    sr: [up, none]\n    anchor: {codec: other, sr: up}\n")
    with plugin_manager(_plugin()), pytest.MonkeyPatch.context() as patch:
        patch.setattr("jcsr_bench.report.plots.plot_rd", lambda *a, **k: [])
        patch.setattr("tempfile.tempdir", str(tmp_path))  # where the temporary folder goes
        code = main(["compare", str(baseline), "--run", "mine", "--registry", str(user)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("**jcsr-bench compare: UNCHANGED** (exit 0): 4 ")
    folder = Path(captured.err.split("running suite mine into ", 1)[1].split()[0])
    assert folder.parent == tmp_path and folder.name.startswith("jcsr-compare-")
    assert (folder / "results.sqlite").is_file()
    assert load_baseline(folder)["run"]["suite"] == "mine"


def test_a_suites_metric_list_is_checked_and_used(tmp_path):
    from jcsr_bench.plugin.registry import load_registry

    user = tmp_path / "user.yaml"
    user.write_text("suites:\n  mine:\n    datasets: [samples]\n    codecs: [jpeg]\n"
                    "    sr: [bicubic]\n    metrics: [psnr-rgb, psnr-yy]\n")
    with pytest.raises(JcsrError, match=r"suites.mine: unknown metric 'psnr-yy'.*psnr-y"):
        load_registry([user])
    user.write_text(user.read_text().replace("psnr-yy", "psnr-y"))
    out = tmp_path / "out"
    run(registry=load_registry([user]), suite="mine", output=out, qualities=[50], limit=1,
        device="cpu", progress=False, stream=io.StringIO())
    assert set(load_baseline(out)["metrics"]) == {"psnr-rgb", "psnr-y"}


def test_identical_outputs_scored_differently_are_not_unchanged(baseline):
    data = load_baseline(baseline)
    rescored = copy.deepcopy(data)  # same digests: only a metric's arithmetic changed
    for point in rescored["combinations"]["pics/sc+up"]["points"]:
        for cell in point["images"].values():
            cell["values"]["psnr-rgb"] -= 0.1
    result = compare(data, rescored)
    sc_up = next(c for c in result.combinations if c.label == "sc+up")
    assert sc_up.identical is False and sc_up.status == "regression"
    assert result.exit_code == 1


def test_a_store_without_digests_is_judged_by_tolerances(tmp_path, runs):
    import shutil
    import sqlite3

    old = tmp_path / "old"
    shutil.copytree(runs("same"), old)
    with sqlite3.connect(old / "results.sqlite") as conn:  # as written before digests
        conn.execute("DROP TABLE digests")
    data = load_baseline(old)
    assert all(cell["digests"] == {} for c in data["combinations"].values()
               for p in c["points"] for cell in p["images"].values())
    result = compare(load_baseline(runs("base")), data, tolerances=Tolerances(exact=True))
    assert result.verdict == "pass" and result.exit_code == 0
    assert "output digests missing" in result.combinations[0].reason


def test_assert_no_regression_after_an_in_process_run(tmp_path, baseline):
    from jcsr_bench import run_benchmark
    from jcsr_bench.testing import plugin_manager

    with plugin_manager(_plugin()), pytest.MonkeyPatch.context() as patch:
        patch.setattr("jcsr_bench.report.plots.plot_rd", lambda *a, **k: [])
        run_benchmark(output=tmp_path / "results", datasets="pics", codecs="sc,other",
                      srs="up,none", device="cpu", registry=_registry(tmp_path / "reg"))
    assert assert_no_regression(tmp_path / "results", baseline).verdict == "unchanged"
