"""Where jcsr-bench keeps things on disk. Computed without importing torch."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of jcsr-bench's own cache (codec outputs, LR images, trained SR weights).

    ``JCSR_BENCH_CACHE`` overrides; default ``$XDG_CACHE_HOME/jcsr-bench``.
    """
    env = os.environ.get("JCSR_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "jcsr-bench"


def trained_dir() -> Path:
    """The trained-weights store: adaptive SR checkpoints per (codec, quality)."""
    return cache_dir() / "trained"


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint folder, as ``torch.hub.get_dir()`` computes it.

    Downloads go here so that files users already have (CompressAI's, torchvision's)
    are reused.
    """
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def offline() -> bool:
    """True when network access is forbidden (``--offline`` / ``JCSR_BENCH_OFFLINE=1``)."""
    return os.environ.get("JCSR_BENCH_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
