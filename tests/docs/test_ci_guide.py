"""docs/ci.md's CI install, plugin-author suite and .gitignore (issue 25 points 10, 11)."""

import io
import re
import subprocess

import pytest
import yaml

from helpers import REPO

CI = REPO / "docs" / "ci.md"
EXAMPLE = REPO / "examples" / "jcsr-bench-posterize"


def test_the_ci_extra_is_light_and_the_ci_docs_use_it():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {re.split(r"[<>=\[ ]", dep)[0].lower() for dep in extras["ci"]}
    assert "pytest" in names and not names & {"ray", "spandrel", "ruff", "lpips"}
    text = CI.read_text()
    assert '- run: pip install -e ".[ci]"' in text  # the GitHub workflow
    assert '    - pip install -e ".[ci]"' in text  # the GitLab one
    assert '.[test]"' not in text.replace('the `[test]` extra', "")


def test_the_plugin_authors_suite_runs_with_their_own_components(tmp_path, monkeypatch):
    from jcsr_bench import run_benchmark
    from jcsr_bench.plugin.manager import PluginManager
    from jcsr_bench.plugin.registry import Registry

    block = re.search(r"```yaml\n(suites:\n  posterize-ci:.*?)```", CI.read_text(), re.S)
    assert block, "docs/ci.md lost its plugin-author suite"
    (tmp_path / "jcsr-bench.yaml").write_text(block.group(1))
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import jcsr_posterize.plugin as plugin

    registry = Registry(PluginManager(entry_points=False, extra_plugins=(plugin,)))
    registry.add_file(REPO / "registry.yaml")
    registry.add_file(tmp_path / "jcsr-bench.yaml")
    suite = yaml.safe_load(block.group(1))["suites"]["posterize-ci"]
    result = run_benchmark(output=tmp_path / "out", suite="posterize-ci", registry=registry,
                           dry_run=True, device="cpu", stream=io.StringIO())
    # 6 images x (4 posterize + 4 jpeg qualities) x 2 SR models, none blocked
    assert result.exit_code == 0 and result.summary.cells == 6 * 8 * 2
    assert suite["codecs"][0] == "posterize" and suite["sr"][0] == "nearest"


def test_the_gitignore_example_ignores_what_ci_writes(tmp_path):
    block = re.search(r"```gitignore\n(.*?)```", CI.read_text(), re.S)
    assert block
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(block.group(1))
    written = ["ci-results/results.sqlite", ".jcsr-cache/codec/x.bin", "compare.md",
               "compare.xml", "compare-plots/a.png", "jcsr-results/.jcsr-bench.lock"]
    kept = ["leaderboards/baselines/ci.json", "jcsr-bench.yaml"]
    for name in written + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    out = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", *written, *kept],
                         capture_output=True, text=True).stdout.split()
    assert out == written
