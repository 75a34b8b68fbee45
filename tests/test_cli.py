"""The command line: light commands stay light; plugins appear; broken ones are contained."""

import json
import subprocess
import sys
import time

import pytest

from helpers import REPO, make_distribution, run_cli

NO_TORCH = """
import sys
from jcsr_bench.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "torchvision", "compressai", "matplotlib", "scipy")
               if m in sys.modules)
print("HEAVY", heavy)
"""


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--all"],
                                  ["list"], ["run", "--help"], ["compare", "--help"],
                                  ["baseline", "--help"], ["history", "--help"]])
def test_light_commands_do_not_import_torch(argv):
    result = subprocess.run([sys.executable, "-c", NO_TORCH.format(argv=argv)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_plugins_answers_in_under_a_second():
    run_cli("plugins")  # warm the file system cache
    start = time.perf_counter()
    result = run_cli("plugins")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert elapsed < 1.0, f"`jcsr-bench plugins` took {elapsed:.2f} s"


def test_version():
    from jcsr_bench import __version__

    result = run_cli("--version")
    assert result.stdout.strip() == f"jcsr-bench {__version__}"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """The example plugin from examples/, really pip-installed into a target folder."""
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target),
         str(REPO / "examples" / "jcsr-bench-posterize")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target


def test_installed_plugin_appears_in_plugins_and_list(installed_example):
    result = run_cli("plugins", "--json", pythonpath=[installed_example])
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (plugin,) = payload["plugins"]
    assert plugin["distribution"] == "jcsr-bench-posterize"
    assert plugin["version"] == "0.1.0"
    assert plugin["registered"] == {"codecs": ["posterize"], "sr": ["nearest"]}
    assert payload["errors"] == []
    listing = run_cli("list", "codecs", pythonpath=[installed_example])
    assert "posterize" in listing.stdout and "jcsr-bench-posterize" in listing.stdout


def test_installed_plugin_passes_its_own_conformance_tests(installed_example):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "examples" / "jcsr-bench-posterize" / "tests")],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(installed_example)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_allow_list_hides_installed_plugins(installed_example):
    result = run_cli("plugins", "--json", pythonpath=[installed_example],
                     env={"JCSR_BENCH_LOAD_PLUGINS": ""})
    assert json.loads(result.stdout)["plugins"] == []


@pytest.fixture
def broken_site(tmp_path):
    return make_distribution(tmp_path / "site", "jcsr-broken", "jcsr_broken",
                             "import nonexistent_dependency_xyz\n")


@pytest.mark.parametrize("argv", [["plugins"], ["list"], ["--help"]])
def test_broken_plugin_does_not_break_commands(broken_site, argv):
    result = run_cli(*argv, pythonpath=[broken_site])
    assert result.returncode == 0, result.stderr
    if argv != ["--help"]:
        assert "jcsr-broken" in result.stderr + result.stdout
        assert "nonexistent_dependency_xyz" in result.stderr + result.stdout


def test_broken_plugin_is_fatal_in_strict_mode(broken_site):
    result = run_cli("plugins", pythonpath=[broken_site],
                     env={"JCSR_BENCH_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert "jcsr-broken" in result.stderr and "STRICT" in result.stderr


def test_registry_errors_exit_2_with_the_place(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("codecs:\n  x: {type: nope}\n")
    result = run_cli("list", "--registry", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr and "Traceback" not in result.stderr
