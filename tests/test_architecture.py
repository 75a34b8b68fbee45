"""The layers of docs/architecture.md hold: import-linter's contract in pyproject.toml
is kept, and a deliberate upward import breaks it (so the check can fail)."""

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
        " sys.exit(lint_imports_command())"]


def _lint(cwd: Path, *pythonpath: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": ":".join(str(p) for p in pythonpath), "PATH": "/usr/bin:/bin"}
    return subprocess.run([*LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_import_contract_is_kept():
    result = _lint(REPO, REPO / "harness", REPO / "plugins")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """kit (the plumbing) importing run (the pipeline) must fail the check."""
    copy = tmp_path / "repo"
    for part in ("harness", "plugins"):
        shutil.copytree(REPO / part, copy / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    victim = copy / "harness" / "jcsr_bench" / "kit" / "paths.py"
    victim.write_text(victim.read_text() + "\nfrom jcsr_bench.run import engine  # noqa\n")
    result = _lint(copy, copy / "harness", copy / "plugins")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "jcsr_bench.kit is not allowed to import jcsr_bench.run" in result.stdout
    assert "jcsr_bench.kit.paths -> jcsr_bench.run.engine" in result.stdout
