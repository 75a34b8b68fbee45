"""Helpers shared by tests: fake installed distributions for entry-point plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_distribution(root: Path, dist: str, module: str, source: str, version="1.0") -> Path:
    """Write ``module.py`` and a ``dist-info`` with a ``jcsr_bench`` entry point under
    ``root`` -- what pip leaves on disk -- and return ``root`` (add it to sys.path)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[jcsr_bench]\n{module} = {module}\n")
    return root


def run_cli(*args: str, env: dict[str, str] | None = None, pythonpath: list[Path] = (),
            cwd: Path | None = None, plugins: list[str] | None = ()
            ) -> subprocess.CompletedProcess:
    """Run ``python -m jcsr_bench.cli.main`` in a subprocess with a controlled environment.

    ``plugins`` are the distributions allowed to load (``JCSR_BENCH_LOAD_PLUGINS``): by
    default none of the installed ones, so whatever a developer has installed cannot
    change a result; ``None`` loads every installed plugin, as a user's shell does.
    """
    full_env = dict(os.environ)
    if plugins is None:
        full_env.pop("JCSR_BENCH_LOAD_PLUGINS", None)
    else:
        full_env["JCSR_BENCH_LOAD_PLUGINS"] = ",".join(plugins)
    full_env.update(env or {})
    paths = [str(p) for p in pythonpath]
    if full_env.get("PYTHONPATH"):
        paths.append(full_env["PYTHONPATH"])
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        [sys.executable, "-m", "jcsr_bench.cli.main", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120,
    )


def tiny_registry(root: Path) -> Path:
    """A registry file adding ``tiny``: one 48x32 photo in a folder (fast end-to-end runs)."""
    from PIL import Image

    photos = root / "photos"
    photos.mkdir(parents=True)
    Image.new("RGB", (48, 32), (120, 30, 200)).save(photos / "a.png")
    registry = root / "tiny.yaml"
    registry.write_text(f"datasets:\n  tiny: {{type: folder, root: '{photos}'}}\n")
    return registry


def table_row(markdown: str, name: str) -> dict[str, str]:
    """The cells of the first Markdown table row in ``markdown`` with a cell ``name`` (a
    combination), keyed by that table's header: {column: cell text}."""
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and name in cells:
            start = index
            while start > 0 and lines[start - 1].startswith("|"):
                start -= 1
            header = [cell.strip() for cell in lines[start].strip().strip("|").split("|")]
            return dict(zip(header, cells, strict=True))
    raise AssertionError(f"no table row {name!r}")
