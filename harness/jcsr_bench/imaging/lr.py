"""LR generation: mod-crop, then antialiased bicubic downsampling (MATLAB or Pillow).

Published SR weights (ESRGAN, BasicSR) were trained on LR images made with MATLAB's
``imresize(img, 1/s)`` -- Keys cubic with a = -0.5, the kernel stretched by ``1/scale``
when shrinking (antialiasing), symmetric (edge-repeating) padding, rows normalised to
sum 1 -- so ``kernel="matlab"`` is the default. ``kernel="pil"`` is Pillow's BICUBIC
resize (the same kernel and antialiasing, different border handling and fixed-point
rounding). Both are deterministic: ``resize_matlab`` sums a fixed list of taps in a
fixed order in float64, never a BLAS call whose blocking could vary.

The HR image is first mod-cropped to a multiple of the scale, keeping the **top-left**
corner (rows/columns at the bottom/right are dropped); metrics compare against that
cropped HR image (:func:`mod_crop`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from jcsr_bench.imaging.images import (
    check_image,
    from_pil,
    load_image,
    pixel_hash,
    save_image,
    to_pil,
)
from jcsr_bench.kit.atomic import atomic_write
from jcsr_bench.kit.errors import CacheWarning, DataError, JcsrError
from jcsr_bench.kit.identity import digest
from jcsr_bench.kit.paths import cache_dir
from jcsr_bench.kit.suggest import did_you_mean

KERNELS = ("matlab", "pil")
DEFAULT_KERNEL = "matlab"
LR_VERSION = 1  # bump when make_lr's output could change; part of the LR cache key


def mod_crop(image: Any, scale: int) -> Any:
    """Crop the last two axes (H, W) down to multiples of ``scale``, keeping the top-left."""
    scale = _check_scale(scale)
    h, w = image.shape[-2], image.shape[-1]
    if h < scale or w < scale:
        raise DataError(f"image of size {w}x{h} is smaller than the scale {scale}")
    return image[..., : h - h % scale, : w - w % scale]


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise JcsrError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise JcsrError(f"unknown LR kernel {kernel!r}." + did_you_mean(str(kernel), KERNELS))
    return kernel


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel, a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (
        -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2
    ) * ((ax > 1) & (ax <= 2))


@functools.lru_cache(maxsize=128)
def contributions(in_len: int, out_len: int, scale: float, antialias: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``imresize`` taps for one axis: source indices (0-based) and weights.

    Returns ``(indices, weights)``, both ``[out_len, taps]``; output ``i`` is
    ``sum_k weights[i, k] * input[indices[i, k]]``. Cached per axis geometry.
    """
    if scale < 1 and antialias:
        width = 4.0 / scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)
    else:
        width = 4.0
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # symmetric pad
    indices = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero columns too
    return np.ascontiguousarray(indices[:, keep]), np.ascontiguousarray(weights[:, keep])


def _resize_axis(t: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool
                 ) -> torch.Tensor:
    idx_np, w_np = contributions(t.shape[dim], out_len, scale, antialias)
    idx = torch.from_numpy(idx_np).to(t.device)
    w = torch.from_numpy(w_np).to(device=t.device, dtype=t.dtype)
    shape = [out_len] + [1] * (t.ndim - 1 - (dim % t.ndim))
    out = None
    for k in range(idx.shape[1]):
        term = t.index_select(dim, idx[:, k]) * w[:, k].reshape(shape)
        out = term if out is None else out + term
    return out


def resize_matlab(x: Any, scale: float | tuple[float, float] | None = None, *,
                  size: tuple[int, int] | None = None, antialias: bool = True) -> Any:
    """MATLAB ``imresize(x, scale, 'bicubic')`` in float64, **before** rounding.

    ``scale`` is MATLAB's multiplier (``0.25`` shrinks by 4; a pair gives (H, W)
    factors); ``size`` (H, W) fixes the output size (the scale is then ``out / in`` per
    axis unless given). The last two axes are H and W (``[C, H, W]`` or ``[H, W]``).
    A numpy array gives a numpy array, a tensor gives a tensor on the same device.
    """
    is_numpy = not isinstance(x, torch.Tensor)
    if x.ndim == 3 and x.shape[0] > 1:
        # a channel at a time: the same values, a third of the float64 memory (24 MP: 0.2 GB)
        planes = [resize_matlab(x[c], scale, size=size, antialias=antialias)
                  for c in range(x.shape[0])]
        return np.stack(planes) if is_numpy else torch.stack(planes)
    t = torch.from_numpy(np.asarray(x, dtype=np.float64)) if is_numpy else x.to(torch.float64)
    if t.ndim < 2:
        raise ValueError(f"resize_matlab needs at least 2 axes (H, W), got shape {tuple(t.shape)}")
    in_h, in_w = t.shape[-2], t.shape[-1]
    if scale is None and size is None:
        raise ValueError("resize_matlab needs scale or size")
    if scale is not None:
        sh, sw = (scale, scale) if np.isscalar(scale) else scale
        sh, sw = float(sh), float(sw)
    if size is None:
        size = (math.ceil(in_h * sh), math.ceil(in_w * sw))
    out_h, out_w = int(size[0]), int(size[1])
    if scale is None:
        sh, sw = out_h / in_h, out_w / in_w
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size {out_h}x{out_w} is empty")
    t = _resize_axis(t, -2, out_h, sh, antialias)  # rows first, as MATLAB does for equal scales
    t = _resize_axis(t, -1, out_w, sw, antialias)
    return t.numpy() if is_numpy else t


def resize_pil(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow BICUBIC (antialiased) resize of a uint8 image to ``size`` = (H, W)."""
    check_image(image)
    resized = to_pil(image).resize((int(size[1]), int(size[0])), Image.Resampling.BICUBIC)
    return from_pil(resized)


def make_lr(hr: torch.Tensor, scale: int = 4, kernel: str = DEFAULT_KERNEL) -> torch.Tensor:
    """The LR image for ``hr``: mod-crop (top-left), then bicubic ÷ ``scale``; uint8.

    ``matlab``: :func:`resize_matlab`, then ``floor(clip(x, 0, 255) + 0.5)`` (MATLAB's
    round-half-away cast). ``pil``: Pillow's BICUBIC. ``scale == 1`` returns a copy.
    """
    check_image(hr, "HR image")
    scale = _check_scale(scale)
    _check_kernel(kernel)
    hr = mod_crop(hr, scale)
    if scale == 1:
        return hr.clone()
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    if kernel == "pil":
        return resize_pil(hr, size)
    lr = resize_matlab(hr, size=size)
    return torch.floor(lr.clamp(0, 255) + 0.5).to(torch.uint8)


def lr_cache_dir() -> Path:
    """Where generated LR images are cached: ``<cache_dir>/lr``."""
    return cache_dir() / "lr"


def lr_key(hr: torch.Tensor, scale: int, kernel: str) -> str:
    """Cache key of an LR image: HR pixel content, shape, scale, kernel, LR_VERSION."""
    pixels = hashlib.sha256(hr.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return digest({"hr": pixels, "shape": list(hr.shape), "scale": scale, "kernel": kernel,
                   "version": LR_VERSION}, length=32)


def cached_lr(hr: torch.Tensor, scale: int = 4, kernel: str = DEFAULT_KERNEL,
              cache: Path | None = None) -> torch.Tensor:
    """:func:`make_lr`, memoised on disk as a PNG keyed by :func:`lr_key`.

    Beside the PNG, ``<key>.digest`` holds the LR image's pixel hash, checked on every
    read: a file that cannot be read, has the wrong size or does not match its digest
    (changed on disk: a :class:`CacheWarning`) is regenerated.
    """
    check_image(hr, "HR image")
    scale, kernel = _check_scale(scale), _check_kernel(kernel)
    key = lr_key(hr, scale, kernel)
    path = Path(cache or lr_cache_dir()) / key[:2] / f"{key}.png"
    expected = (3, hr.shape[-2] // scale, hr.shape[-1] // scale)
    stamp = path.with_suffix(".digest")
    if path.exists():
        try:
            lr = load_image(path)
            stored = stamp.read_text().strip() if stamp.is_file() else None
            if tuple(lr.shape) == expected and stored == pixel_hash(lr):
                return lr
            if stored is not None:
                warnings.warn(f"LR cache file {path} does not match its stored digest "
                              "(changed on disk?); regenerating it", CacheWarning,
                              stacklevel=2)
        except (DataError, OSError):
            pass
    lr = make_lr(hr, scale, kernel)
    save_image(lr, path)
    atomic_write(stamp, pixel_hash(lr).encode())
    return lr


def lr_for(hr: torch.Tensor, scale: int = 4, kernel: str = DEFAULT_KERNEL, *,
           dataset: Any = None, name: str | None = None, cache: bool = True) -> torch.Tensor:
    """The LR input for one dataset image: the dataset's own LR file when it provides one
    (``dataset.lr_image(name, scale)``, e.g. DIV2K's official X4 with ``official_lr``),
    else a generated (and, with ``cache``, disk-cached) one.

    An official LR file must be exactly the mod-cropped HR size divided by ``scale``.
    """
    scale = _check_scale(scale)
    if dataset is not None and name is not None and hasattr(dataset, "lr_image"):
        lr = dataset.lr_image(name, scale)
        if lr is not None:
            check_image(lr, f"LR image of {name}")
            cropped = mod_crop(hr, scale)
            expected = (3, cropped.shape[-2] // scale, cropped.shape[-1] // scale)
            if tuple(lr.shape) != expected:
                raise DataError(
                    f"{name}: the dataset's LR image is {lr.shape[-1]}x{lr.shape[-2]}, but the "
                    f"HR image {hr.shape[-1]}x{hr.shape[-2]} needs {expected[2]}x{expected[1]} "
                    f"at scale {scale}; fix the LR file or turn official LR off")
            return lr
    return cached_lr(hr, scale, kernel) if cache else make_lr(hr, scale, kernel)
