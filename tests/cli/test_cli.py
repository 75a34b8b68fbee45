"""The command line: light commands stay light; plugins appear; broken ones are contained."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from helpers import REPO, make_distribution, run_cli

NO_TORCH = """
import sys
from jcsr_bench.cli.main import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "torchvision", "compressai", "matplotlib", "scipy")
               if m in sys.modules)
print("HEAVY", heavy)
"""


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--all"],
                                  ["list"], ["list", "sr", "--trained"], ["run", "--help"],
                                  ["compare", "--help"], ["baseline", "--help"],
                                  ["history", "--help"]])
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


BYSTANDER = """
from jcsr_bench import hookimpl, lazy

@hookimpl
def register_codecs(register):
    register("bystander-codec", lazy("json:JSONDecoder"), description="someone else's")
"""


def install_bystander(target):
    """A second, unrelated plugin distribution in the same site folder: what a plugin
    author's environment holds besides the plugin under test."""
    return make_distribution(target, "jcsr-bench-bystander", "jcsr_bystander", BYSTANDER)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """The example plugin from examples/, really pip-installed into a target folder (from
    a copy: an in-tree build would leave build/ in the repository), next to a bystander."""
    source = tmp_path_factory.mktemp("src") / "jcsr-bench-posterize"
    shutil.copytree(REPO / "examples" / "jcsr-bench-posterize", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return install_bystander(target)


def test_installed_plugin_appears_in_plugins_and_list(installed_example):
    # Every installed plugin loads, as in a user's shell: the bystander is there too.
    result = run_cli("plugins", "--json", pythonpath=[installed_example], plugins=None)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    found = {p["distribution"]: p for p in payload["plugins"]}
    plugin = found["jcsr-bench-posterize"]
    assert plugin["version"] == "0.1.0"
    assert plugin["registered"] == {"codecs": ["posterize"], "sr": ["nearest"]}
    assert found["jcsr-bench-bystander"]["registered"] == {"codecs": ["bystander-codec"]}
    assert [e for e in payload["errors"] if e["distribution"] in found] == []
    listing = run_cli("list", "codecs", pythonpath=[installed_example], plugins=None)
    assert "posterize" in listing.stdout and "jcsr-bench-posterize" in listing.stdout


def test_allow_list_shows_only_the_named_plugin(installed_example):
    result = run_cli("plugins", "--json", pythonpath=[installed_example],
                     plugins=["jcsr-bench-posterize"])
    (plugin,) = json.loads(result.stdout)["plugins"]
    assert plugin["distribution"] == "jcsr-bench-posterize"


@pytest.mark.slow
def test_installed_plugin_passes_its_own_conformance_tests(installed_example):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "examples" / "jcsr-bench-posterize" / "tests")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(installed_example)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


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
    result = run_cli(*argv, pythonpath=[broken_site], plugins=["jcsr-broken"])
    assert result.returncode == 0, result.stderr
    if argv != ["--help"]:
        assert "jcsr-broken" in result.stderr + result.stdout
        assert "nonexistent_dependency_xyz" in result.stderr + result.stdout


def test_broken_plugin_is_fatal_in_strict_mode(broken_site):
    result = run_cli("plugins", pythonpath=[broken_site], plugins=["jcsr-broken"],
                     env={"JCSR_BENCH_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert "jcsr-broken" in result.stderr and "STRICT" in result.stderr


def test_registry_errors_exit_2_with_the_place(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("codecs:\n  x: {type: nope}\n")
    result = run_cli("list", "--registry", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr and "Traceback" not in result.stderr


def test_plugins_does_not_say_none_installed_above_a_load_error(broken_site):
    result = run_cli("plugins", pythonpath=[broken_site], plugins=["jcsr-broken"])
    assert result.returncode == 0, result.stderr
    assert "No third-party plugins installed" not in result.stdout
    assert result.stdout.splitlines()[0] == "No third-party plugin loaded: 1 failed (below)."
    assert "load error: jcsr_broken (jcsr-broken)" in result.stdout
    assert "jcsr-broken" not in result.stderr  # reported once, in the list


def test_warnings_are_one_line_without_python_source(broken_site):
    result = run_cli("list", "metrics", pythonpath=[broken_site], plugins=["jcsr-broken"])
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "jcsr-bench: warning: skipping plugin 'jcsr_broken' from 'jcsr-broken': "
        "ModuleNotFoundError: No module named 'nonexistent_dependency_xyz'"]


def test_warnings_from_other_libraries_keep_their_origin(capsys):
    import warnings as w

    from jcsr_bench.cli.main import _show_warning

    _show_warning(w.WarningMessage("torch said so", UserWarning, "/x/torch.py", 7).message,
                  UserWarning, "/x/torch.py", 7, line="print('source line')")
    err = capsys.readouterr().err
    assert err == "jcsr-bench: warning: torch said so (UserWarning from /x/torch.py:7)\n"


@pytest.mark.slow
def test_plugin_tests_pass_with_another_plugin_installed(tmp_path):
    """The suite's promise to plugin authors: a third-party plugin in the environment
    (here a bystander on PYTHONPATH, seen by every test and every subprocess) changes no
    result. Runs this file's and test_plugins.py's tests again under that condition."""
    site = install_bystander(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("JCSR_BENCH_LOAD_PLUGINS", None)  # as in a plugin author's shell
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "tests/cli/test_cli.py", "tests/plugin/test_plugins.py", "-k",
         "not another_plugin_installed and not answers_in_under and not own_conformance"],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_examples_hold_no_build_output():
    """pip builds the example in-tree; its build/ and egg-info must never be committed."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "examples"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert tracked and not [f for f in tracked if "/build/" in f or ".egg-info" in f]
    ignored = subprocess.run(["git", "check-ignore", "-q",
                              "examples/jcsr-bench-posterize/build/lib/x.py"], cwd=REPO)
    assert ignored.returncode == 0
