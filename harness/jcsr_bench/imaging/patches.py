"""Seeded random crops for training loaders: HR patches and aligned (LR, HR) pairs.

Determinism: every random choice comes from one ``numpy.random.Generator`` built from
the seed (PCG64, identical on every platform), in a fixed order, so the same seed and
images give the same patches everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def random_crops(images: Sequence[torch.Tensor], patch: int, count: int,
                 rng: np.random.Generator | int | None = 0) -> torch.Tensor:
    """``count`` random ``patch``×``patch`` crops, stacked ``[count, C, patch, patch]``.

    Each crop picks an image uniformly among those large enough, then a position.
    """
    usable = [im for im in images if im.shape[-2] >= patch and im.shape[-1] >= patch]
    if not usable:
        raise DataError(f"no image is at least {patch}x{patch} pixels")
    g = as_rng(rng)
    out = []
    for _ in range(count):
        im = usable[int(g.integers(0, len(usable)))]
        top = int(g.integers(0, im.shape[-2] - patch + 1))
        left = int(g.integers(0, im.shape[-1] - patch + 1))
        out.append(_crop(im, top, left, patch, patch))
    return torch.stack(out)


def random_pair_crops(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], lr_patch: int,
                      scale: int, count: int, rng: np.random.Generator | int | None = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` aligned crops from (LR, HR) pairs: stacked LR and HR batches."""
    usable = [(lr, hr) for lr, hr in pairs
              if lr.shape[-2] >= lr_patch and lr.shape[-1] >= lr_patch]
    if not usable:
        raise DataError(f"no LR image is at least {lr_patch}x{lr_patch} pixels")
    g = as_rng(rng)
    lrs, hrs = [], []
    for _ in range(count):
        lr, hr = usable[int(g.integers(0, len(usable)))]
        a, b = aligned_crop(lr, hr, lr_patch, scale, g)
        lrs.append(a)
        hrs.append(b)
    return torch.stack(lrs), torch.stack(hrs)


def dihedral(image: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations (``k`` in 0..7): ``k & 4`` flips W, ``k % 4`` quarter turns."""
    if k & 4:
        image = image.flip(-1)
    return torch.rot90(image, k % 4, dims=(-2, -1))


def random_dihedral(images: Sequence[torch.Tensor], rng: np.random.Generator | int | None = 0
                    ) -> list[torch.Tensor]:
    """Apply the same random flip/rotation to every image (e.g. an LR/HR pair)."""
    k = int(as_rng(rng).integers(0, 8))
    return [dihedral(im, k) for im in images]
