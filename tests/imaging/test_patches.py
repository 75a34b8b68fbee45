"""Seeded aligned crops and flips (``jcsr_bench.imaging.patches``), as training uses them."""

import numpy as np
import pytest
import torch

from jcsr_bench.imaging.patches import aligned_crop, flip_pair
from jcsr_bench.kit.errors import DataError


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, h, w), np.uint8))


def test_aligned_crop_alignment_and_determinism():
    hr = _image(64, 48)
    lr = hr[:, ::4, ::4].clone()  # nearest: LR pixel (i, j) = HR pixel (4i, 4j)
    a, b = aligned_crop(lr, hr, 6, 4, rng=7)
    assert tuple(a.shape) == (3, 6, 6) and tuple(b.shape) == (3, 24, 24)
    assert torch.equal(a, b[:, ::4, ::4])
    a2, b2 = aligned_crop(lr, hr, 6, 4, rng=7)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    with pytest.raises(DataError):
        aligned_crop(lr, hr[:, :-1], 6, 4, rng=0)


def _pool4(x: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c, h // 4, 4, w // 4, 4).mean(axis=(2, 4))


def test_flip_pair_applies_the_same_flip_to_both_images_and_stays_aligned():
    hr = _image(16, 24).numpy().astype(np.float64)
    lr = _pool4(hr)  # block means commute with flips and transposes
    seen = set()
    for seed in range(32):
        a, b = flip_pair(lr, hr, np.random.default_rng(seed))
        assert np.array_equal(np.asarray(a), _pool4(np.ascontiguousarray(b)))
        seen.add((a.shape, np.asarray(a).tobytes()))
    assert len(seen) == 8  # every flip/transpose combination occurs
