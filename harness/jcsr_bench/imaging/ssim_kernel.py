"""The SSIM maps of one pyramid level in one pass over the rows, compiled with numba.

Why a kernel: filtering the five quantities (X, Y, X², Y², XY) as separate convolutions
and then forming the maps walks every plane through memory a dozen times; here each
output row is filtered vertically into five row buffers, horizontally, turned into its
SSIM and contrast-structure values and summed before the next row, so the working set is
a few rows (it stays in the cache and memory is bounded by the width).

Why the values stay pytorch-msssim's: every filtered value is the same sequential float32
sum over the 11 taps (fused multiply-add allowed, no reassociation: numba's ``contract``
flag only), first along H then along W, and the maps use pytorch-msssim's float32
operations in its order (no contraction there). Only the averages differ: rows are summed
in float64 (pytorch-msssim sums a float32 map), so results agree to ~1e-7.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TAPS = 11
_FILTER = {"cache": True, "nogil": True, "fastmath": {"contract"}}


@njit(**_FILTER)
def _vertical(x, y, channel, row, window, out):  # pragma: no cover - compiled
    """``out[0..4]`` = the vertical filter of X, Y, X², Y², XY at output ``row``."""
    width = x.shape[2]
    out[:] = 0.0  # products below are rounded to float32 first, as pytorch-msssim's X * Y
    for k in range(TAPS):
        w = window[k]
        for j in range(width):
            a = np.float32(x[channel, row + k, j])
            b = np.float32(y[channel, row + k, j])
            out[0, j] += w * a
            out[1, j] += w * b
            out[2, j] += w * (a * a)
            out[3, j] += w * (b * b)
            out[4, j] += w * (a * b)


@njit(**_FILTER)
def _horizontal(rows, window, out):  # pragma: no cover - compiled
    """``out[q]`` = the horizontal (valid) filter of ``rows[q]``."""
    out[:] = 0.0
    for q in range(rows.shape[0]):
        for k in range(TAPS):
            w = window[k]
            for j in range(out.shape[1]):
                out[q, j] += w * rows[q, j + k]


@njit(cache=True, nogil=True)
def _row_sums(f, c1, c2):  # pragma: no cover - compiled
    """Sums over one row of pytorch-msssim's ``ssim_map`` and ``cs_map`` (float64)."""
    ssim_sum = 0.0
    cs_sum = 0.0
    two = np.float32(2.0)
    for j in range(f.shape[1]):
        mu1, mu2 = f[0, j], f[1, j]
        mu1_sq = mu1 * mu1
        mu2_sq = mu2 * mu2
        mu1_mu2 = mu1 * mu2
        sigma1_sq = f[2, j] - mu1_sq
        sigma2_sq = f[3, j] - mu2_sq
        sigma12 = f[4, j] - mu1_mu2
        cs_map = (two * sigma12 + c2) / ((sigma1_sq + sigma2_sq) + c2)
        luminance = (two * mu1_mu2 + c1) / ((mu1_sq + mu2_sq) + c1)
        ssim_sum += luminance * cs_map
        cs_sum += cs_map
    return ssim_sum, cs_sum


@njit(cache=True, nogil=True)
def level_sums(x, y, window, c1, c2):  # pragma: no cover - compiled
    """Per-channel sums (float64) of the SSIM and contrast-structure maps of one level.

    ``x`` and ``y`` are C-contiguous ``[C, H, W]`` arrays of one dtype (integers or
    float32); ``window`` the float32 taps; ``c1``/``c2`` float32 constants.
    """
    channels, height, width = x.shape
    out_h, out_w = height - TAPS + 1, width - TAPS + 1
    ssim_sums = np.zeros(channels)
    cs_sums = np.zeros(channels)
    vertical = np.empty((5, width), dtype=np.float32)
    filtered = np.empty((5, out_w), dtype=np.float32)
    for channel in range(channels):
        for row in range(out_h):
            _vertical(x, y, channel, row, window, vertical)
            _horizontal(vertical, window, filtered)
            ssim_sum, cs_sum = _row_sums(filtered, c1, c2)
            ssim_sums[channel] += ssim_sum
            cs_sums[channel] += cs_sum
    return ssim_sums, cs_sums
