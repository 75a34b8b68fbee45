"""The JPEG AI common-test-conditions metric set, in the JPEG AI quality framework's
conventions (docs/metrics.md, "JPEG AI metrics").

Every metric reads the BT.709 full-range 10-bit planes of :mod:`jcsr_bench.imaging.color`
(derived once per prepared image and shared by all metrics of a cell), on the run's
device. The implementations are well-kept libraries where one matches the framework:
pytorch-msssim (MS-SSIM, the framework's own ``MSSSIMTorch``), piq (VIFp, FSIM, IW-SSIM),
psnr-hvsm (PSNR-HVS / -M), vmaf-torch (VMAF v0.6.1); NLPD is the framework's formula
(IQA_pytorch's ``NLPD``, 30 lines, ported here: pyiqa's NLPD is a different variant).
A missing library is reported before the run like a missing weight file.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from typing import Any

from jcsr_bench.components import NotApplicable
from jcsr_bench.imaging import color
from jcsr_bench.imaging.quality import _check_pair
from jcsr_bench.kit.identity import make_identity

INSTALL = 'pip install "jcsr-bench[jpeg-ai]"'
MS_SSIM_MIN_SIDE = 160  # pytorch-msssim: 5 scales need a short side > 160 px
IW_SSIM_MIN_SIDE = 161  # piq: information_weighted_ssim needs >= 161 x 161
TILE_PIXELS = 3_000_000  # VIF, IW-SSIM, VMAF: whole images up to ~DIV2K size, tiles above
ADM_TILE_PIXELS = 6_000_000  # VMAF's ADM (~30 MB per megapixel): whole up to 6 MP
BAND_PIXELS = 1 << 20  # PSNR, PSNR-HVS, FSIM's pooling: rows worked on at a time


def lib_version(dist: str) -> str:
    """``dist==version`` for a metric's identity (a library upgrade is a new metric
    definition, so stored values are not mixed across versions)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{dist}=={version(dist)}"
    except PackageNotFoundError:
        return f"{dist} (absent)"


def _codes(image: Any) -> Any:
    """The BT.709 10-bit Y, U, V codes ``[3, H, W]`` int16, derived once per prepared image
    (144 MB for a 24 MP photo: half the float planes)."""
    return image.derived("yuv709-codes", color.yuv709_codes)


def _y(image: Any, region: tuple[slice, slice] = (slice(None), slice(None))) -> Any:
    """The 10-bit BT.709 Y plane (or a region of it) as ``[1, 1, h, w]`` float32 in [0, 1]."""
    return color.from_codes(_codes(image)[0][region])[None, None]


def _y_codes(image: Any, region: tuple[slice, slice] = (slice(None), slice(None))) -> Any:
    """The 10-bit BT.709 Y plane (or a region) as ``[1, 1, h, w]`` float32 codes 0..1023."""
    return _codes(image)[0][region].float()[None, None]


def grid(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """Rows and columns of the near-square grid whose tiles hold at most ``max_pixels``."""
    rows = cols = 1
    while math.ceil(height / rows) * math.ceil(width / cols) > max_pixels:
        if math.ceil(height / rows) >= math.ceil(width / cols):
            rows += 1
        else:
            cols += 1
    return rows, cols


def tiles(height: int, width: int, max_pixels: int) -> list[tuple[slice, slice]]:
    """The tiles of :func:`grid` covering the image (the whole image when it fits): the
    regions a whole-image library is run on, one at a time."""
    rows, cols = grid(height, width, max_pixels)
    row_cuts = [height * i // rows for i in range(rows + 1)]
    col_cuts = [width * j // cols for j in range(cols + 1)]
    return [(slice(r0, r1), slice(c0, c1)) for r0, r1 in zip(row_cuts, row_cuts[1:])
            for c0, c1 in zip(col_cuts, col_cuts[1:])]


def tiled_mean(reference: Any, test: Any, score: Any, share: float = 1.0) -> float:
    """``score(region)`` of a library that holds whole-image float planes: on the whole
    image up to ``TILE_PIXELS``, above on tiles of at most ``share * TILE_PIXELS``,
    averaged weighted by tile area.

    Why: piq's VIFp and IW-SSIM keep 25-60 float32 planes of the image alive (2.5-5.6 GB
    for 24 MP); tiles bound that. Above ``TILE_PIXELS`` the value is the tiles' mean, not
    the whole image's: docs/metrics.md states the measured difference.
    """
    height, width = reference.image.shape[1:]
    limit = TILE_PIXELS if height * width <= TILE_PIXELS else int(share * TILE_PIXELS)
    total = 0.0
    for rows, cols in tiles(height, width, limit):
        area = (rows.stop - rows.start) * (cols.stop - cols.start)
        total += area * float(score((rows, cols)))
    return total / (height * width)


class _JpegAIMetric:
    """Shared plumbing: the 10-bit planes, the run's device, the library check."""

    higher_is_better = True
    accepts_prepared = True
    requires: tuple[str, ...] = ()
    library = ""

    def missing_weights(self) -> list[str]:
        """The install remedy when the metric's library is absent (empty: ready)."""
        absent = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not absent:
            return []
        return [f"{self.name} needs the {self.library} package (module "
                f"{', '.join(absent)} not found): {INSTALL}"]

    def to(self, device: Any) -> _JpegAIMetric:
        return self  # stateless: inputs arrive on the run's device

    def compute(self, reference: Any, test: Any) -> float:
        import torch

        reference, test = _check_pair(reference, test)
        with torch.inference_mode():
            return float(self._score(reference, test))

    def _score(self, reference: Any, test: Any) -> float:
        raise NotImplementedError


class PSNR709(_JpegAIMetric):
    """PSNR of one BT.709 10-bit plane (Y, U or V), peak 1023, over integer codes."""

    def __init__(self, channel: str = "y") -> None:
        if channel not in ("y", "u", "v"):
            raise ValueError(f"psnr-709: channel must be y, u or v, got {channel!r}")
        self.channel = channel
        self.name = f"psnr-{channel}709"
        self.identity = make_identity("metric:psnr-709", channel=channel, bits=10,
                                      matrix="bt709-full", v=1)

    def _score(self, reference: Any, test: Any) -> float:
        index = "yuv".index(self.channel)
        a = _codes(reference)[index].reshape(-1)
        b = _codes(test)[index].reshape(-1)
        sse = 0  # exact: integer squared differences summed in int64
        for ra, rb in zip(a.split(BAND_PIXELS), b.split(BAND_PIXELS), strict=True):
            sse += int((ra.int() - rb.int()).square_().sum())
        if sse == 0:
            return math.inf
        return 10.0 * math.log10(color.PEAK ** 2 * a.numel() / sse)


class PSNRY709(PSNR709):
    """PSNR on the BT.709 10-bit Y (the registered ``psnr-y709``)."""

    def __init__(self) -> None:
        super().__init__("y")


class PSNRU709(PSNR709):
    """PSNR on the BT.709 10-bit U (Cb)."""

    def __init__(self) -> None:
        super().__init__("u")


class PSNRV709(PSNR709):
    """PSNR on the BT.709 10-bit V (Cr)."""

    def __init__(self) -> None:
        super().__init__("v")


class MSSSIMY(_JpegAIMetric):
    """MS-SSIM (pytorch-msssim, 5 scales) on the 10-bit BT.709 Y codes, data range 1023.

    On the CPU through :mod:`jcsr_bench.imaging.ssim` (pytorch-msssim's float32 arithmetic
    in row bands: bounded memory, the reference's pyramid prepared once per image); on
    CUDA pytorch-msssim itself."""

    name = "ms-ssim-y"
    requires = ("pytorch_msssim",)
    library = "pytorch-msssim"
    identity = make_identity("metric:ms-ssim-y", bits=10, matrix="bt709-full",
                             impl=lib_version("pytorch-msssim"), v=1)

    def _score(self, reference: Any, test: Any) -> float:
        from jcsr_bench.imaging import ssim

        side = min(reference.image.shape[1:])
        if side <= MS_SSIM_MIN_SIDE:
            raise NotApplicable(f"short side {side} px <= {MS_SSIM_MIN_SIDE}: the 5-scale "
                                "MS-SSIM needs a short side > 160 px")
        prepared = reference.derived("ms-ssim-y", lambda image: ssim.SSIMReference(
            _codes(reference)[:1], data_range=color.PEAK))
        return ssim.ms_ssim(prepared, _codes(test)[:1])


class VIF(_JpegAIMetric):
    """VIFp (pixel-domain VIF, piq.vif_p) on the 10-bit BT.709 Y in [0, 1]; images above
    ``TILE_PIXELS`` in tiles (:func:`tiled_mean`)."""

    name = "vif"
    requires = ("piq",)
    library = "piq"
    identity = make_identity("metric:vif", impl=lib_version("piq"), fn="vif_p", bits=10,
                             matrix="bt709-full", tiles=TILE_PIXELS, v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import piq

        side = min(reference.image.shape[1:])
        if side < 41:
            raise NotApplicable(f"short side {side} px < 41: VIFp's 4 scales need 41 px")
        return tiled_mean(reference, test, lambda region: piq.vif_p(
            _y(test, region), _y(reference, region), data_range=1.0))


def fsim_input(image: Any) -> Any:
    """What piq.fsim works on after its first two steps, made a band of rows at a time:
    the 10-bit-rounded RGB scaled to [0, 255] (``x / data_range * 255``) and average-pooled
    by ``round(short side / 256)`` (piq's own factor), as ``[1, 3, h, w]`` float32.

    Why: piq converts and pools the whole float image (~1 GB for 24 MP); pooled first,
    FSIM holds a ~0.1 MP image. piq then finds a pooling factor of 1 (the pooled short side
    lies in 192..383 px) and its ``/ 255 * 255`` moves a value by at most one float32 ulp.
    """
    import torch
    import torch.nn.functional as F

    height, width = image.shape[1:]
    k = max(1, round(min(height, width) / 256))
    out = torch.empty((3, height // k, width // k), device=image.device)
    rows = max(k, BAND_PIXELS // max(width, 1) // k * k)
    for top in range(0, height // k * k, rows):
        band = image[:, top:min(top + rows, height // k * k)]
        scaled = color.rgb10(band).mul_(255)  # piq's / data_range is / 1.0 here
        out[:, top // k:(top + band.shape[1]) // k] = F.avg_pool2d(scaled[None], k)[0]
    return out[None]


class FSIM(_JpegAIMetric):
    """FSIMc (piq.fsim, chromatic) on 10-bit-rounded RGB, pooled by :func:`fsim_input`."""

    name = "fsim"
    requires = ("piq",)
    library = "piq"
    identity = make_identity("metric:fsim", impl=lib_version("piq"), chromatic=True, bits=10, v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import piq

        ref = reference.derived("fsim-input", fsim_input)
        return piq.fsim(fsim_input(test.image), ref, data_range=255.0, chromatic=True).item()


class IWSSIM(_JpegAIMetric):
    """IW-SSIM (piq.information_weighted_ssim) on the 10-bit BT.709 Y in [0, 1]; images
    above ``TILE_PIXELS`` in tiles of half that (:func:`tiled_mean`: IW-SSIM holds ~230 MB
    per megapixel, twice VIFp)."""

    name = "iw-ssim"
    requires = ("piq",)
    library = "piq"
    identity = make_identity("metric:iw-ssim", impl=lib_version("piq"), bits=10,
                             matrix="bt709-full", tiles=[TILE_PIXELS, TILE_PIXELS // 2], v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import piq
        import torch

        side = min(reference.image.shape[1:])
        if side < IW_SSIM_MIN_SIDE:
            raise NotApplicable(f"short side {side} px < {IW_SSIM_MIN_SIDE}: IW-SSIM's 5 "
                                "scales need 161 px")
        try:
            return tiled_mean(reference, test, lambda region: piq.information_weighted_ssim(
                _y(test, region), _y(reference, region), data_range=1.0), share=0.5)
        except torch.linalg.LinAlgError as exc:
            raise NotApplicable("IW-SSIM is undefined on a flat image (its local covariance "
                                "is singular)") from exc


# NLPD (Laparra et al. 2016) as the JPEG AI framework computes it (IQA_pytorch.NLPD).
_LAPLACIAN = ((0.0025, 0.0125, 0.0200, 0.0125, 0.0025),
              (0.0125, 0.0625, 0.1000, 0.0625, 0.0125),
              (0.0200, 0.1000, 0.1600, 0.1000, 0.0200),
              (0.0125, 0.0625, 0.1000, 0.0625, 0.0125),
              (0.0025, 0.0125, 0.0200, 0.0125, 0.0025))
_DN = (((0, 0.1011, 0), (0.1493, 0, 0.1460), (0, 0.1015, 0)),
       ((0, 0.0757, 0), (0.1986, 0, 0.1846), (0, 0.0837, 0)),
       ((0, 0.0477, 0), (0.2138, 0, 0.2243), (0, 0.0467, 0)),
       ((0, 0, 0), (0.2503, 0, 0.2616), (0, 0, 0)),
       ((0, 0, 0), (0.2598, 0, 0.2552), (0, 0, 0)),
       ((0, 0, 0), (0.2215, 0, 0.0717), (0, 0, 0)))
_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
NLPD_MIN_SIDE = 64  # six pyramid levels with a 5-tap reflect pad: 2**6 px


def _conv(x: Any, weight: Any, stride: int = 1) -> Any:
    """``F.conv2d(x, weight, stride=stride)`` of one ``[1, 1, H, W]`` plane, computed a band
    of output rows at a time (the same values: each output reads only its own window).

    Why: the CPU convolution unfolds its input, 25 floats per pixel for a 5x5 filter
    (2.4 GB for one 24 MP plane); a band bounds that to ``BAND_PIXELS`` outputs.
    """
    import torch.nn.functional as F

    size_h, size_w = weight.shape[-2:]
    out_h = (x.shape[2] - size_h) // stride + 1
    out_w = (x.shape[3] - size_w) // stride + 1
    out = x.new_empty((1, 1, out_h, out_w))
    rows = max(1, BAND_PIXELS // max(out_w, 1))
    for top in range(0, out_h, rows):
        bottom = min(out_h, top + rows)
        band = x[:, :, top * stride:(bottom - 1) * stride + size_h]
        out[:, :, top:bottom] = F.conv2d(band, weight, stride=stride)
    return out


def nlpd_pyramid(y: Any) -> Iterator[Any]:
    """The divisively normalised Laplacian pyramid of ``[1, 1, H, W]``, level by level (6),
    each intermediate freed as soon as it is used (the level-0 peak is ~4 planes)."""
    import torch
    import torch.nn.functional as F

    dtype, device = y.dtype, y.device
    filt = torch.tensor(_LAPLACIAN, dtype=dtype, device=device)[None, None]
    level = y
    del y  # the caller's plane is freed with level 0
    for dn, sigma in zip(_DN, _SIGMAS, strict=True):
        low = _conv(F.pad(level, (2, 2, 2, 2), mode="reflect"), filt, stride=2)
        # nested calls: each temporary is freed as soon as the next step has read it
        up = _conv(F.pad(F.interpolate(low, scale_factor=2, mode="bilinear",
                                       align_corners=True), (2, 2, 2, 2), mode="reflect"), filt)
        if up.shape != level.shape:
            up = F.interpolate(up, list(level.shape[2:]))
        band = torch.sub(level, up, out=up)
        level = low
        weights = torch.tensor(dn, dtype=dtype, device=device)[None, None]
        local = _conv(F.pad(band, (1, 1, 1, 1), mode="reflect").abs_(), weights)
        yield band.div_(local.add_(sigma))


class NLPD(_JpegAIMetric):
    """NLPD on the 10-bit BT.709 Y in [0, 1], the JPEG AI framework's formula; lower is
    better."""

    name = "nlpd"
    higher_is_better = False
    identity = make_identity("metric:nlpd", impl="jpeg-ai-qaf(IQA_pytorch)", bits=10,
                             matrix="bt709-full", v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import torch

        side = min(reference.image.shape[1:])
        if side < NLPD_MIN_SIDE:
            raise NotApplicable(f"short side {side} px < {NLPD_MIN_SIDE}: NLPD's 6 pyramid "
                                "levels need 64 px")
        ref = reference.derived("nlpd-pyramid", lambda image: list(nlpd_pyramid(_y(reference))))
        levels = [torch.sub(b, a, out=b).square_().mean().sqrt_() for a, b in
                  zip(ref, nlpd_pyramid(_y(test)), strict=True)]
        return torch.stack(levels).mean().item()


class PSNRHVS(_JpegAIMetric):
    """PSNR-HVS or PSNR-HVS-M (psnr-hvsm) on the 10-bit BT.709 Y in [0, 1], replicate-padded
    to a multiple of 8 as the JPEG AI framework does."""

    requires = ("psnr_hvsm",)
    library = "psnr-hvsm"

    def __init__(self, masking: bool = False) -> None:
        self.masking = bool(masking)
        self.name = "psnr-hvs-m" if self.masking else "psnr-hvs"
        self.identity = make_identity("metric:psnr-hvs", masking=self.masking, bits=10,
                                      pad="replicate-8", matrix="bt709-full",
                                      impl=lib_version("psnr-hvsm"), v=1)

    @staticmethod
    def _padded(codes: Any) -> Any:
        """Rows of Y codes -> the float64 plane the library reads (the float32 [0, 1]
        values, replicate-padded to multiples of 8)."""
        import numpy as np

        y = color.from_codes(codes).cpu().double().numpy()
        return np.pad(y, ((0, -y.shape[0] % 8), (0, -y.shape[1] % 8)), mode="edge")

    def _score(self, reference: Any, test: Any) -> float:
        import contextlib
        import io

        import numpy as np

        with contextlib.redirect_stdout(io.StringIO()):  # it prints about its torch backend
            from psnr_hvsm import hvs_hvsm_mse_tiles

        a, b = _codes(reference)[0], _codes(test)[0]
        height, width = a.shape
        # Bands of whole 8-row blocks: the library's mean over blocks, summed band by band
        # (only the last band is padded at the bottom: the image's own replicated last row).
        rows = max(8, BAND_PIXELS // max(width, 1) // 8 * 8)
        sums, blocks = np.zeros(2), 0
        for top in range(0, height, rows):
            with np.errstate(invalid="ignore", divide="ignore"):  # masked by the library
                hvs, hvs_m = hvs_hvsm_mse_tiles(self._padded(a[top:top + rows]),
                                                self._padded(b[top:top + rows]))
            sums += (hvs.sum(), hvs_m.sum())
            blocks += hvs.size
        mse = sums[1 if self.masking else 0] / blocks
        return 100.0 if mse == 0 else float(10.0 * np.log10(1.0 / mse))


class PSNRHVSM(PSNRHVS):
    """PSNR-HVS-M (with contrast masking)."""

    def __init__(self) -> None:
        super().__init__(masking=True)


class VMAF(_JpegAIMetric):
    """VMAF v0.6.1 (vmaf-torch, one frame, no motion) on the 10-bit BT.709 Y scaled to
    [0, 255] (code / 4), as libvmaf reads 10-bit input.

    Large images are scored in tiles (vmaf-torch holds ~100 MB per megapixel), with the
    features pooled as the whole image pools them and the SVM run once: above
    ``TILE_PIXELS`` VIF's numerators and denominators are summed over a partition; above
    ``ADM_TILE_PIXELS`` ADM runs on :func:`adm_tiles` and its Minkowski (p = 3) sums are
    pooled in p = 3. What remains of a difference is the tiles' own borders (and ADM's
    three orientations pooled together): docs/metrics.md gives its size.
    """

    name = "vmaf"
    requires = ("vmaf_torch",)
    library = "vmaf-torch"
    identity = make_identity("metric:vmaf", model="vmaf_v0.6.1", impl=lib_version("vmaf-torch"),
                             bits=10, matrix="bt709-full",
                             tiles=[TILE_PIXELS, ADM_TILE_PIXELS], v=1)
    MIN_SIDE = 17  # vmaf-torch's reflect padding of its coarsest scale fails at 16 px

    def __init__(self) -> None:
        self._net: Any = None

    def _score(self, reference: Any, test: Any) -> float:
        side = min(reference.image.shape[1:])
        if side < self.MIN_SIDE:
            raise NotApplicable(f"short side {side} px < {self.MIN_SIDE}: VMAF's coarsest "
                                f"scale needs {self.MIN_SIDE} px")
        if self._net is None:
            from vmaf_torch import VMAF as Net

            self._net = Net(temporal_pooling=False, enable_motion=False, clip_score=True).eval()
        device = reference.image.device
        net = self._net.to(device)
        height, width = reference.image.shape[1:]
        vif = [net.vif.vif_num_den(_y_codes(reference, r) / 4.0, _y_codes(test, r) / 4.0)
               for r in tiles(height, width, TILE_PIXELS)]
        vif_num, vif_den = (sum(part) for part in zip(*vif, strict=True))
        adm = [net.adm.adm_num_den(_y_codes(reference, r) / 4.0, _y_codes(test, r) / 4.0)
               for r in adm_tiles(height, width, *grid(height, width, ADM_TILE_PIXELS))]
        adm_num, adm_den = (part[0] if len(part) == 1 else
                            (sum(v.double() ** 3 for v in part) ** (1 / 3)).float()
                            for part in zip(*adm, strict=True))
        motion = vif_num.new_zeros((1, 1))  # one frame: no motion feature
        return net.predict(_adm_score(adm_num, adm_den, width * height), motion,
                           vif_num / vif_den).item()


def adm_tiles(height: int, width: int, rows: int, cols: int) -> list[tuple[slice, slice]]:
    """VMAF's ADM tiles: a ``rows`` x ``cols`` grid overlapping by each tile's own border.

    ADM leaves out a 10 % border on each side of what it is given; a tile 1.25x its core
    (an eighth of the core added on each side) counts just its core, and the cores
    partition the whole image's counted 80 % x 80 % centre. One tile is the whole image.
    """
    def cuts(size: int, parts: int) -> list[slice]:
        span = 0.8 * size / parts
        return [slice(max(0, round(0.1 * size + span * (i - 0.125))),
                      min(size, round(0.1 * size + span * (i + 1.125)))) for i in range(parts)]

    return [(r, c) for r in cuts(height, rows) for c in cuts(width, cols)]


def _adm_score(num: Any, den: Any, pixels: int) -> Any:
    """vmaf-torch's ``ADM.adm_score`` from the (tile-summed) per-scale sums."""
    num_sum = num.sum(dim=-1, keepdim=True)
    den_sum = den.sum(dim=-1, keepdim=True)
    limit = 1e-10 * pixels / (1920 * 1080)
    num_sum = num_sum.masked_fill(num_sum < limit, 0.0)
    den_sum = den_sum.masked_fill(den_sum < limit, 0.0)
    return (num_sum / den_sum).masked_fill(den_sum == 0.0, 1.0)
