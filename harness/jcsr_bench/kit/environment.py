"""The environment a number was computed in: CPU model, ISA level, threads, versions.

Results repeat bit for bit only within one fingerprint: torch dispatches to different
kernels per ISA level (AVX2, AVX512, ...) and thread count, and Pillow's codec
libraries change their output between releases. Reports, baselines and the
reproduction table record this so a reader knows when "same numbers" can be expected.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

#: Distributions whose versions can change a computed number.
NUMERIC_DISTRIBUTIONS = ("torch", "compressai", "numpy", "Pillow", "pytorch-msssim", "scipy")

#: Pillow's codec libraries (``PIL.features`` names), whose versions change payloads.
PILLOW_CODECS = ("jpg", "webp", "avif", "jpg_2000", "zlib")


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def isa_level() -> str:
    """The CPU capability torch dispatches its kernels to (``AVX2``, ``AVX512``, ...)."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def versions() -> dict[str, str]:
    """Python, the numeric distributions and Pillow's codec libraries, by name."""
    found = {"python": platform.python_version()}
    for dist in NUMERIC_DISTRIBUTIONS:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    from PIL import features

    for codec in PILLOW_CODECS:
        try:
            found[f"Pillow:{codec}"] = features.version(codec) or "absent"
        except ValueError:
            found[f"Pillow:{codec}"] = "absent"
    return found


def fingerprint(device: str = "cpu") -> dict[str, Any]:
    """Everything that decides whether two runs can be bit-identical, as plain JSON data."""
    import torch

    return {
        "cpu": cpu_model(),
        "isa": isa_level(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "device": device,
        "versions": versions(),
    }


def git_commit(folder: Path | None = None) -> str | None:
    """The commit checked out in ``folder`` (default: the working directory), if any:
    recorded with a run's results, so commands run outside the repository know it."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None
