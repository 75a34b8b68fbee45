"""SSIM and MS-SSIM with pytorch-msssim's exact arithmetic, fast on the CPU and in bounded memory.

pytorch-msssim (``ms_ssim(X, Y, data_range=255)``) is the reference: an 11-tap σ = 1.5
Gaussian (float32 weights), valid filtering along H then W, ``K = (0.01, 0.03)``, 2×2
average pooling with zero padding on odd sides (counted in the mean), ReLU on each level's
per-channel contrast term and on the last level's SSIM, weights ``(0.0448, 0.2856,
0.3001, 0.2363, 0.1333)``, product over levels, mean over channels.

Why it is faster on the CPU: pytorch-msssim filters each of the five quantities (X, Y,
X², Y², XY) with a grouped convolution and then forms the maps with a dozen whole-image
operations; each is a pass over memory. Here each level is one compiled pass over the
rows (:mod:`jcsr_bench.imaging.ssim_kernel`, numba): an output row is filtered, turned
into its SSIM and contrast values and summed while it is in the cache. Every filtered
value and every map value is pytorch-msssim's float32 result (the same sequential sum
over the taps, the same operations in the same order); only the averages are summed in
float64 row by row, so results agree to ~1e-7.

Why it is bounded in memory: the kernel keeps ten row buffers, never a float plane of the
image; the pyramid levels below the first are a quarter of the image each, computed a
band at a time, and pooling is exact in float32 (sums of at most 4⁴ 8-bit values).

On CUDA :func:`ms_ssim` calls pytorch-msssim itself (it is fast there), with TF32
disabled so that the convolutions stay float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
BAND_PIXELS = 1 << 17  # pooled pixels computed at a time (a few MB of float32 work)


def gaussian_window(size: int = WIN_SIZE, sigma: float = WIN_SIGMA) -> torch.Tensor:
    """The 1-D Gaussian window, computed in float32 exactly as pytorch-msssim does."""
    import torch

    coords = torch.arange(size, dtype=torch.float)
    coords -= size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g /= g.sum()
    return g


def min_side(levels: int = len(WEIGHTS)) -> int:
    """The short side must exceed this for ``levels`` scales (pytorch-msssim's assertion)."""
    return (WIN_SIZE - 1) * 2 ** (levels - 1)


def _level_sums(x: np.ndarray, y: np.ndarray, window: np.ndarray,
                data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel means (float64) of the SSIM and contrast-structure maps of one level."""
    from jcsr_bench.imaging.ssim_kernel import level_sums

    c1 = np.float32((K1 * data_range) ** 2)
    c2 = np.float32((K2 * data_range) ** 2)
    ssim_sum, cs_sum = level_sums(x, y, window, c1, c2)
    count = (x.shape[1] - WIN_SIZE + 1) * (x.shape[2] - WIN_SIZE + 1)
    return ssim_sum / count, cs_sum / count


def _planes(image: torch.Tensor) -> np.ndarray:
    """The C-contiguous numpy planes the kernel reads (no copy when already so)."""
    return image.detach().contiguous().numpy()


def _same_dtype(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both planes in one dtype (float32 where they differ: integers are exact there), so
    that the kernel is compiled once per input type, not per pair of types."""
    if x.dtype == y.dtype:
        return x, y
    return x.astype(np.float32), y.astype(np.float32)


def _downsample(image: torch.Tensor, band_pixels: int) -> torch.Tensor:
    """pytorch-msssim's ``avg_pool2d(kernel_size=2, padding=side % 2)``, a band at a time
    (as two pairwise additions: 5x faster than ``avg_pool2d`` on the CPU, same values).

    Padding an odd side by one zero on both ends and pooling 2x2 windows never reaches the
    far padding, so a zero row on top and a zero column on the left are all it needs; the
    result is exact in float32 (sums of at most 4**4 8- or 10-bit values, divided by 4).
    """
    import torch
    import torch.nn.functional as F

    channels, height, width = image.shape
    pad_top, pad_left = height % 2, width % 2
    out_h, out_w = (height + pad_top) // 2, (width + pad_left) // 2
    out = torch.empty(channels, out_h, out_w)
    rows = max(1, band_pixels // out_w)
    for top in range(0, out_h, rows):
        bottom = min(out_h, top + rows)
        first = 2 * top - pad_top
        band = image[:, max(first, 0):2 * bottom - pad_top].float()
        band = F.pad(band, (pad_left, 0, 1 if first < 0 else 0, 0))
        pairs = band.view(channels, bottom - top, 2, 2 * out_w)
        rows_summed = (pairs[:, :, 0] + pairs[:, :, 1]).view(channels, bottom - top, out_w, 2)
        torch.add(rows_summed[..., 0], rows_summed[..., 1], out=out[:, top:bottom])
    out.div_(4)
    return out


def _check(x: torch.Tensor, y: torch.Tensor | None, levels: int) -> None:
    if y is not None and x.shape != y.shape:
        raise ValueError(f"images differ in size: {list(x.shape)} and {list(y.shape)}")
    if x.dim() != 3:
        raise ValueError(f"expected [C, H, W] images, got shape {list(x.shape)}")
    if min(x.shape[1:]) <= min_side(levels):
        raise ValueError(f"short side {min(x.shape[1:])} px must be > {min_side(levels)} "
                         f"for {levels} scale(s)")


class SSIMReference:
    """A reference image prepared once for comparing many test images with it.

    On the CPU it holds the pyramid as the kernel reads it: the first level as given
    (C-contiguous), the levels below in float32, a third of the image in all. On CUDA it
    holds the float32 image for pytorch-msssim.

    ``image`` holds integer sample values (any integer or float dtype) in
    ``0..data_range``: 8-bit RGB at 255, 10-bit codes at 1023 (JPEG AI's ``ms-ssim-y``).
    """

    def __init__(self, image: torch.Tensor, *, levels: int = len(WEIGHTS),
                 band_pixels: int = BAND_PIXELS, data_range: float = DATA_RANGE) -> None:
        import torch

        _check(image, None, levels)
        self.shape = tuple(image.shape)
        self.levels = levels
        self.data_range = float(data_range)
        self.band_pixels = band_pixels
        self.device = image.device
        if image.is_cuda:
            self.float = image.float().unsqueeze(0)
            return
        self.window = gaussian_window().numpy()
        self.pyramid: list[np.ndarray] = []
        with torch.no_grad():
            for level in range(levels):
                self.pyramid.append(_planes(image))
                if level < levels - 1:
                    image = _downsample(image, band_pixels)

    def level_means(self, test: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per level, the per-channel means (float64) of the SSIM and contrast maps."""
        import torch

        if tuple(test.shape) != self.shape:
            raise ValueError(f"images differ in size: {list(self.shape)} and "
                             f"{list(test.shape)}")
        means = []
        with torch.no_grad():
            for level, reference in enumerate(self.pyramid):
                x, y = _same_dtype(reference, _planes(test))
                means.append(_level_sums(x, y, self.window, self.data_range))
                if level < self.levels - 1:
                    test = _downsample(test, self.band_pixels)
        return means


def _prepared(reference: torch.Tensor | SSIMReference, levels: int) -> SSIMReference:
    if isinstance(reference, SSIMReference):
        if reference.levels != levels:
            raise ValueError(f"reference prepared for {reference.levels} scale(s), not {levels}")
        return reference
    return SSIMReference(reference, levels=levels)


def ssim(reference: torch.Tensor | SSIMReference, test: torch.Tensor) -> float:
    """pytorch-msssim's ``ssim(X, Y, data_range=255)`` for one ``[C, H, W]`` image pair
    (uint8 or float32 values in 0..255), or a prepared reference and a test image."""
    import torch

    prepared = _prepared(reference, 1)
    if prepared.device.type == "cuda":
        return _on_cuda(prepared, test, ms=False)
    ssim_mean, _ = prepared.level_means(test)[0]
    return float(torch.from_numpy(ssim_mean).float().mean(dtype=torch.float32))


def ms_ssim(reference: torch.Tensor | SSIMReference, test: torch.Tensor) -> float:
    """pytorch-msssim's ``ms_ssim(X, Y, data_range=255)`` for one ``[C, H, W]`` image pair
    (uint8 or float32 values in 0..255), or a prepared reference and a test image.

    CPU tensors take the banded path of this module, CUDA tensors pytorch-msssim itself.
    """
    import torch

    prepared = _prepared(reference, len(WEIGHTS))
    if prepared.device.type == "cuda":
        return _on_cuda(prepared, test, ms=True)
    means = prepared.level_means(test)
    # pytorch-msssim's final combination, in its float32 operations
    mcs = [torch.relu(torch.from_numpy(cs).float()) for _, cs in means[:-1]]
    values = torch.stack(mcs + [torch.relu(torch.from_numpy(means[-1][0]).float())], dim=0)
    combined = torch.prod(values ** torch.tensor(WEIGHTS).view(-1, 1), dim=0)
    return float(combined.mean())


def _on_cuda(reference: SSIMReference, test: torch.Tensor, *, ms: bool) -> float:
    """pytorch-msssim itself, with TF32 convolutions off so that they stay float32."""
    import torch
    from pytorch_msssim import ms_ssim as reference_ms_ssim
    from pytorch_msssim import ssim as reference_ssim

    from jcsr_bench.imaging.tiling import exact_fp32

    if tuple(test.shape) != reference.shape:
        raise ValueError(f"images differ in size: {list(reference.shape)} and "
                         f"{list(test.shape)}")
    fn = reference_ms_ssim if ms else reference_ssim
    with torch.no_grad(), exact_fp32("cuda"):
        value = fn(reference.float, test.to(reference.device).float().unsqueeze(0),
                   data_range=reference.data_range)
    return float(value.item())
