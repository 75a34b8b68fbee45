"""Seeded aligned (LR, HR) crops and their flips: the training loaders' patches.

Determinism: every random choice comes from one ``numpy.random.Generator`` built from
the seed (PCG64, identical on every platform), in a fixed order, so the same seed and
images give the same patches everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jcsr_bench.kit.errors import DataError


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator as given, or a fresh one from an integer seed (None: seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else int(rng))


def _crop(image: torch.Tensor, top: int, left: int, h: int, w: int) -> torch.Tensor:
    return image[..., top : top + h, left : left + w]


def aligned_crop(lr: torch.Tensor, hr: torch.Tensor, lr_patch: int, scale: int,
                 rng: np.random.Generator | int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One random ``lr_patch`` crop of ``lr`` and the matching ``lr_patch*scale`` crop of
    ``hr`` (top-left at ``scale`` times the LR corner). ``hr`` must be ``lr`` × scale."""
    lh, lw = lr.shape[-2:]
    if tuple(hr.shape[-2:]) != (lh * scale, lw * scale):
        raise DataError(f"HR {tuple(hr.shape[-2:])} is not LR {(lh, lw)} x {scale}: "
                        "mod-crop the HR image before making the LR one")
    if lh < lr_patch or lw < lr_patch:
        raise DataError(f"LR image {lw}x{lh} is smaller than the patch {lr_patch}")
    g = as_rng(rng)
    top = int(g.integers(0, lh - lr_patch + 1))
    left = int(g.integers(0, lw - lr_patch + 1))
    hp = lr_patch * scale
    return (_crop(lr, top, left, lr_patch, lr_patch),
            _crop(hr, top * scale, left * scale, hp, hp))


def flip_pair(lr: Any, hr: Any, rng: np.random.Generator) -> tuple[Any, Any]:
    """BasicSR's augmentation, the same on both images: a horizontal flip, a vertical
    flip and a transpose, each with probability 1/2 (three draws from ``rng``)."""
    hflip, vflip, rot = rng.random(3) < 0.5
    if hflip:
        lr, hr = lr[..., :, ::-1], hr[..., :, ::-1]
    if vflip:
        lr, hr = lr[..., ::-1, :], hr[..., ::-1, :]
    if rot:
        lr, hr = lr.swapaxes(-1, -2), hr.swapaxes(-1, -2)
    return lr, hr
