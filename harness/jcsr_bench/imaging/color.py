"""BT.709 full-range Y'CbCr at 10 bits, as the JPEG AI quality framework computes it.

The JPEG AI common test conditions score every codec on planes derived this way
(jpeg-ai-qaf, ``DataClass.load_image``): 8-bit RGB is scaled to [0, 1] and rounded to the
10-bit grid, converted with the BT.709 matrix in full range
(``Y = 0.2126 R + 0.7152 G + 0.0722 B``, ``U = (B - Y) / 1.8556 + 0.5``,
``V = (R - Y) / 1.5748 + 0.5``), clamped to [0, 1] and rounded to 10 bits again. This
differs from the SR papers' BT.601 studio-range luma (``imaging.quality.rgb_to_y``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

BITS = 10
PEAK = (1 << BITS) - 1  # 1023
KR, KB = 0.2126, 0.0722
CB_SCALE = 2 * (1 - KB)  # 1.8556
CR_SCALE = 2 * (1 - KR)  # 1.5748
BAND_PIXELS = 1 << 20  # rows converted at a time (float64 work stays ~50 MB)


def _round10(x: torch.Tensor) -> torch.Tensor:
    return x.mul_(PEAK).round_().div_(PEAK)


def rgb10(image: torch.Tensor) -> torch.Tensor:
    """8-bit RGB ``[3, H, W]`` -> float32 RGB in [0, 1] on the 10-bit grid (FSIM's input)."""
    import torch

    return _round10(image.to(torch.float64).div_(255.0)).float()


def yuv709(image: torch.Tensor) -> torch.Tensor:
    """8-bit RGB ``[3, H, W]`` -> float32 ``[3, H, W]`` Y, U, V in [0, 1] on the 10-bit grid.

    Computed in float64 a band of rows at a time; stored in float32 (every 10-bit code
    k/1023 keeps its code exactly: ``round(v * 1023) == k``).
    """
    return _yuv709_bands(image, codes=False)


def yuv709_codes(image: torch.Tensor) -> torch.Tensor:
    """8-bit RGB ``[3, H, W]`` -> the integer codes 0..1023 of :func:`yuv709` as int16:
    half the memory of the float planes (what a prepared 24 MP image keeps)."""
    return _yuv709_bands(image, codes=True)


def from_codes(codes: torch.Tensor) -> torch.Tensor:
    """Integer codes -> float32 in [0, 1], the values :func:`yuv709` stores (k/1023 in
    float64, rounded once to float32), a band at a time."""
    import torch

    out = torch.empty(codes.shape, dtype=torch.float32, device=codes.device)
    flat, target = codes.reshape(-1), out.view(-1)
    for start in range(0, flat.numel(), BAND_PIXELS):
        stop = start + BAND_PIXELS
        target[start:stop] = flat[start:stop].to(torch.float64).div_(PEAK)
    return out


def _yuv709_bands(image: torch.Tensor, *, codes: bool) -> torch.Tensor:
    import torch

    height, width = image.shape[1:]
    dtype = torch.int16 if codes else torch.float32
    out = torch.empty((3, height, width), dtype=dtype, device=image.device)
    rows = max(1, BAND_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        band = slice(top, min(top + rows, height))
        rgb = _round10(image[:, band].to(torch.float64).div_(255.0))
        r, g, b = rgb
        y = KR * r + (1 - KR - KB) * g + KB * b
        planes = torch.stack([y, (b - y) / CB_SCALE + 0.5, (r - y) / CR_SCALE + 0.5])
        planes = planes.clamp_(0.0, 1.0)
        out[:, band] = planes.mul_(PEAK).round_() if codes else _round10(planes)
    return out


def codes(plane: torch.Tensor) -> torch.Tensor:
    """A [0, 1] plane on the 10-bit grid -> its integer codes 0..1023 (float64)."""
    import torch

    return plane.to(torch.float64).mul(PEAK).round_()
