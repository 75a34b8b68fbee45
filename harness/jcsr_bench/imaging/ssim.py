"""SSIM and MS-SSIM with pytorch-msssim's exact arithmetic, fast on the CPU and in bounded memory.

pytorch-msssim (``ms_ssim(X, Y, data_range=255)``) is the reference: an 11-tap σ = 1.5
Gaussian (float32 weights), valid filtering along H then W, ``K = (0.01, 0.03)``, 2×2
average pooling with zero padding on odd sides (counted in the mean), ReLU on each level's
per-channel contrast term and on the last level's SSIM, weights ``(0.0448, 0.2856,
0.3001, 0.2363, 0.1333)``, product over levels, mean over channels.

Why it is faster on the CPU: pytorch-msssim filters each quantity with a grouped
convolution in the NCHW layout, which is oneDNN's slow path. Here the 15 planes of one
level (X, Y, X², Y², XY per channel) are stacked channels-last, where oneDNN's depthwise
kernel runs several times faster and computes every output with the same sequential
float32 FMA sum over the taps, so each filtered value, and every value of the SSIM maps,
is bit-for-bit pytorch-msssim's. Only the averages differ: they are summed per band in
float64 (pytorch-msssim sums a whole float32 map), so results agree to ~1e-7.

Why it is bounded in memory: each level is processed in bands of output rows (with the
filter's 10-row margin), so the float planes of a band, never of the image, are alive; the
pyramid levels below the first are a quarter of the image each, and pooling is exact in
float32 (sums of at most 4⁴ 8-bit values).

On CUDA :func:`ms_ssim` calls pytorch-msssim itself (it is fast there), with TF32
disabled so that the convolutions stay float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
BAND_PIXELS = 1 << 17  # output pixels per band: ~8 MB per float32 stack of 15 planes
KEEP_STATS_PIXELS = 3_000_000  # keep a reference's filtered statistics up to ~DIV2K size


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


def _bands(height: int, width: int, band_pixels: int) -> list[tuple[int, int]]:
    """Output-row ranges ``[top, bottom)`` of one level's valid (filtered) map."""
    out_h, out_w = height - (WIN_SIZE - 1), width - (WIN_SIZE - 1)
    rows = max(1, band_pixels // out_w)
    return [(top, min(out_h, top + rows)) for top in range(0, out_h, rows)]


def _filter(images: list[torch.Tensor], squares: list[torch.Tensor],
            products: list[tuple[torch.Tensor, torch.Tensor]],
            window: torch.Tensor) -> list[torch.Tensor]:
    """Gaussian-filter (valid, H then W) each image, each square, each product of a pair.

    Inputs are ``[C, rows, W]`` bands (uint8 or float32). The planes are stacked
    channels-last (oneDNN's fast depthwise path: the same sequential float32 FMA over the
    taps as pytorch-msssim's NCHW convolution, so bit-for-bit its values); the squares and
    products are formed in float32 first, as pytorch-msssim does. Returns planar
    ``[C, rows - 10, W - 10]`` float32 tensors in the order images, squares, products.
    """
    import torch
    import torch.nn.functional as F

    channels, rows, width = images[0].shape if images else squares[0].shape
    count = len(images) + len(squares) + len(products)
    planes = channels * count
    stack = torch.empty(rows, width, planes)

    def slot(i: int) -> torch.Tensor:
        return stack[..., i * channels:(i + 1) * channels]

    floats = {}
    for i, image in enumerate(images):
        slot(i).copy_(image.permute(1, 2, 0))
        floats[id(image)] = slot(i)

    def as_float(image: torch.Tensor) -> torch.Tensor:
        return floats.get(id(image), image.permute(1, 2, 0).float())

    for i, image in enumerate(squares, len(images)):
        value = as_float(image)
        torch.mul(value, value, out=slot(i))
    for i, (a, b) in enumerate(products, len(images) + len(squares)):
        torch.mul(as_float(a), as_float(b), out=slot(i))
    vertical = window.view(1, 1, -1, 1).expand(planes, 1, -1, 1)
    horizontal = window.view(1, 1, 1, -1).expand(planes, 1, 1, -1)
    nchw = stack.unsqueeze(0).permute(0, 3, 1, 2)  # channels-last view
    filtered = F.conv2d(F.conv2d(nchw, vertical, groups=planes), horizontal, groups=planes)
    out_rows, out_width = filtered.shape[2:]
    planar = filtered.permute(0, 2, 3, 1).reshape(-1, planes).t().contiguous()
    return list(planar.view(planes, out_rows, out_width).split(channels))


class _ReferenceLevel:
    """One pyramid level of a reference image: its pixels and, per band, the filtered
    mean ``mu1``, ``mu1²`` and variance ``sigma1²``, which do not depend on the test."""

    def __init__(self, image: torch.Tensor, window: torch.Tensor, band_pixels: int,
                 keep: bool) -> None:
        self.image = image
        self.bands = _bands(*image.shape[1:], band_pixels)
        self.stats = [self._stats(top, bottom, window) for top, bottom in self.bands] \
            if keep else None

    def _stats(self, top: int, bottom: int, window: torch.Tensor) -> tuple:
        band = self.image[:, top:bottom + WIN_SIZE - 1]
        mu1, xx = _filter([band], [band], [], window)
        mu1_sq = mu1.pow(2)
        return mu1, mu1_sq, xx.sub_(mu1_sq)

    def band_stats(self, index: int, window: torch.Tensor) -> tuple:
        if self.stats is not None:
            return self.stats[index]
        return self._stats(*self.bands[index], window)


def _level_sums(reference: _ReferenceLevel, y: torch.Tensor, window: torch.Tensor,
                data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel means (float64) of the SSIM and contrast-structure maps of one level."""
    import torch

    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    channels, height, width = y.shape
    ssim_sum = torch.zeros(channels, dtype=torch.float64)
    cs_sum = torch.zeros(channels, dtype=torch.float64)
    for index, (top, bottom) in enumerate(reference.bands):
        x_band = reference.image[:, top:bottom + WIN_SIZE - 1]
        y_band = y[:, top:bottom + WIN_SIZE - 1]
        mu1, mu1_sq, sigma1_sq = reference.band_stats(index, window)
        mu2, yy, xy = _filter([y_band], [y_band], [(x_band, y_band)], window)
        # pytorch-msssim's _ssim, operation by operation (the same float32 roundings),
        # in place on this band's own buffers (the cached reference terms are only read)
        mu1_mu2 = mu1 * mu2
        mu2_sq = mu2.pow_(2)
        sigma2_sq = yy.sub_(mu2_sq)
        sigma12 = xy.sub_(mu1_mu2)
        cs_map = sigma12.mul_(2).add_(c2).div_((sigma1_sq + sigma2_sq).add_(c2))
        luminance = mu1_mu2.mul_(2).add_(c1).div_((mu1_sq + mu2_sq).add_(c1))
        ssim_map = luminance.mul_(cs_map)
        cs_sum += cs_map.sum(dim=(1, 2), dtype=torch.float64)
        ssim_sum += ssim_map.sum(dim=(1, 2), dtype=torch.float64)
    count = (height - WIN_SIZE + 1) * (width - WIN_SIZE + 1)
    return ssim_sum / count, cs_sum / count


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

    On the CPU it holds the pyramid (levels below the first are float32, a third of the
    image in all) and, when the image has at most ``KEEP_STATS_PIXELS`` pixels, each band's
    filtered mean, mean² and variance (48 bytes per pixel): a comparison then filters 9
    planes per band instead of 15. Larger images recompute those per comparison, so memory
    stays bounded. On CUDA it holds the float32 image for pytorch-msssim.

    ``image`` holds integer sample values (any integer or float dtype) in
    ``0..data_range``: 8-bit RGB at 255, 10-bit codes at 1023 (JPEG AI's ``ms-ssim-y``).
    """

    def __init__(self, image: torch.Tensor, *, levels: int = len(WEIGHTS),
                 band_pixels: int = BAND_PIXELS, keep_stats: bool | None = None,
                 data_range: float = DATA_RANGE) -> None:
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
        if keep_stats is None:
            keep_stats = image.shape[1] * image.shape[2] <= KEEP_STATS_PIXELS
        self.window = gaussian_window()
        self.pyramid: list[_ReferenceLevel] = []
        with torch.no_grad():
            for level in range(levels):
                self.pyramid.append(_ReferenceLevel(image, self.window, band_pixels,
                                                    keep_stats))
                if level < levels - 1:
                    image = _downsample(image, band_pixels)

    def level_means(self, test: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level, the per-channel means (float64) of the SSIM and contrast maps."""
        import torch

        if tuple(test.shape) != self.shape:
            raise ValueError(f"images differ in size: {list(self.shape)} and "
                             f"{list(test.shape)}")
        means = []
        with torch.no_grad():
            for level, reference in enumerate(self.pyramid):
                means.append(_level_sums(reference, test, self.window, self.data_range))
                if level < self.levels - 1:
                    test = _downsample(test, self.band_pixels)
        return means


def _prepared(reference: torch.Tensor | SSIMReference, levels: int) -> SSIMReference:
    if isinstance(reference, SSIMReference):
        if reference.levels != levels:
            raise ValueError(f"reference prepared for {reference.levels} scale(s), not {levels}")
        return reference
    return SSIMReference(reference, levels=levels, keep_stats=False)


def ssim(reference: torch.Tensor | SSIMReference, test: torch.Tensor) -> float:
    """pytorch-msssim's ``ssim(X, Y, data_range=255)`` for one ``[C, H, W]`` image pair
    (uint8 or float32 values in 0..255), or a prepared reference and a test image."""
    import torch

    prepared = _prepared(reference, 1)
    if prepared.device.type == "cuda":
        return _on_cuda(prepared, test, ms=False)
    ssim_mean, _ = prepared.level_means(test)[0]
    return float(ssim_mean.float().mean(dtype=torch.float32))


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
    mcs = [torch.relu(cs.float()) for _, cs in means[:-1]]
    values = torch.stack(mcs + [torch.relu(means[-1][0].float())], dim=0)
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
