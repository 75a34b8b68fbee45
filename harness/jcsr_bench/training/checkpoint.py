"""Atomic save / exact resume of a training state (models, optimisers, RNG states, step).

Files are written to a temporary name in the same folder and renamed with
``os.replace``: a crash or Ctrl-C mid-write leaves the previous checkpoint intact.
Everything stored is plain tensors / numbers / strings, so loading uses
``torch.load(weights_only=True)`` -- a checkpoint is data, never code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jcsr_bench.kit.atomic import atomic_write_with
from jcsr_bench.kit.errors import JcsrError


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically (tmp file in the same folder + rename)."""
    atomic_write_with(Path(path), lambda handle: torch.save(obj, handle))


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training state safely; a corrupt file is a clear error."""
    try:
        state = torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise JcsrError(f"no training state at {path}: nothing to resume") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise JcsrError(f"cannot read the training state {path}: {exc}. Delete it to start "
                        "over.") from exc
    if not isinstance(state, dict) or "step" not in state:
        raise JcsrError(f"{path} is not a jcsr-bench training state (no 'step')")
    return state


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU + CUDA) generator states, as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
