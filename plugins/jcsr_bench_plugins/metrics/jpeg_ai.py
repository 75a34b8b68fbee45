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
from typing import Any

from jcsr_bench.components import NotApplicable
from jcsr_bench.imaging import color
from jcsr_bench.imaging.quality import _check_pair
from jcsr_bench.kit.identity import make_identity

INSTALL = 'pip install "jcsr-bench[jpeg-ai]"'
MS_SSIM_MIN_SIDE = 160  # pytorch-msssim: 5 scales need a short side > 160 px
IW_SSIM_MIN_SIDE = 161  # piq: information_weighted_ssim needs >= 161 x 161


def lib_version(dist: str) -> str:
    """``dist==version`` for a metric's identity (a library upgrade is a new metric
    definition, so stored values are not mixed across versions)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{dist}=={version(dist)}"
    except PackageNotFoundError:
        return f"{dist} (absent)"


def _planes(image: Any) -> Any:
    return image.derived("yuv709-10bit", color.yuv709)


def _y(image: Any) -> Any:
    """The 10-bit BT.709 Y plane as ``[1, 1, H, W]`` float32 in [0, 1]."""
    return _planes(image)[0][None, None]


def _y_codes(image: Any) -> Any:
    """The 10-bit BT.709 Y plane as ``[1, 1, H, W]`` float32 integer codes 0..1023."""
    return (_y(image) * color.PEAK).round_()


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
        a = _planes(reference)[index]
        b = _planes(test)[index]
        sse = 0.0
        for ra, rb in zip(a.split(1024), b.split(1024), strict=True):
            sse += float((ra * color.PEAK).round_().sub_((rb * color.PEAK).round_())
                         .double().square_().sum())
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
    """MS-SSIM (pytorch-msssim, 5 scales) on the 10-bit BT.709 Y, data range 1023."""

    name = "ms-ssim-y"
    requires = ("pytorch_msssim",)
    library = "pytorch-msssim"
    identity = make_identity("metric:ms-ssim-y", bits=10, matrix="bt709-full",
                             impl=lib_version("pytorch-msssim"), v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import pytorch_msssim

        side = min(reference.image.shape[1:])
        if side <= MS_SSIM_MIN_SIDE:
            raise NotApplicable(f"short side {side} px <= {MS_SSIM_MIN_SIDE}: the 5-scale "
                                "MS-SSIM needs a short side > 160 px")
        return pytorch_msssim.ms_ssim(_y_codes(reference), _y_codes(test),
                                      data_range=color.PEAK).item()


class VIF(_JpegAIMetric):
    """VIFp (pixel-domain VIF, piq.vif_p) on the 10-bit BT.709 Y in [0, 1]."""

    name = "vif"
    requires = ("piq",)
    library = "piq"
    identity = make_identity("metric:vif", impl=lib_version("piq"), fn="vif_p", bits=10,
                             matrix="bt709-full", v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import piq

        side = min(reference.image.shape[1:])
        if side < 41:
            raise NotApplicable(f"short side {side} px < 41: VIFp's 4 scales need 41 px")
        return piq.vif_p(_y(test), _y(reference), data_range=1.0).item()


class FSIM(_JpegAIMetric):
    """FSIMc (piq.fsim, chromatic) on 10-bit-rounded RGB in [0, 1]."""

    name = "fsim"
    requires = ("piq",)
    library = "piq"
    identity = make_identity("metric:fsim", impl=lib_version("piq"), chromatic=True, bits=10, v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import piq

        ref = reference.derived("rgb-10bit", color.rgb10)[None]
        return piq.fsim(color.rgb10(test.image)[None], ref, data_range=1.0,
                        chromatic=True).item()


class IWSSIM(_JpegAIMetric):
    """IW-SSIM (piq.information_weighted_ssim) on the 10-bit BT.709 Y in [0, 1]."""

    name = "iw-ssim"
    requires = ("piq",)
    library = "piq"
    identity = make_identity("metric:iw-ssim", impl=lib_version("piq"), bits=10,
                             matrix="bt709-full", v=1)

    def _score(self, reference: Any, test: Any) -> float:
        import piq
        import torch

        side = min(reference.image.shape[1:])
        if side < IW_SSIM_MIN_SIDE:
            raise NotApplicable(f"short side {side} px < {IW_SSIM_MIN_SIDE}: IW-SSIM's 5 "
                                "scales need 161 px")
        try:
            return piq.information_weighted_ssim(_y(test), _y(reference), data_range=1.0).item()
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


def nlpd_pyramid(y: Any) -> list[Any]:
    """The divisively normalised Laplacian pyramid of ``[1, 1, H, W]`` (6 levels)."""
    import torch
    import torch.nn.functional as F

    filt = torch.tensor(_LAPLACIAN, dtype=y.dtype, device=y.device)[None, None]
    out = []
    level = y
    for dn, sigma in zip(_DN, _SIGMAS, strict=True):
        low = F.conv2d(F.pad(level, (2, 2, 2, 2), mode="reflect"), filt, stride=2)
        up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True)
        up = F.conv2d(F.pad(up, (2, 2, 2, 2), mode="reflect"), filt)
        if up.shape != level.shape:
            up = F.interpolate(up, list(level.shape[2:]))
        band = level - up
        weights = torch.tensor(dn, dtype=y.dtype, device=y.device)[None, None]
        local = F.conv2d(F.pad(band.abs(), (1, 1, 1, 1), mode="reflect"), weights)
        out.append(band / (sigma + local))
        level = low
    return out


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
        ref = reference.derived("nlpd-pyramid", lambda image: nlpd_pyramid(_y(reference)))
        levels = [torch.sqrt(((a - b) ** 2).mean()) for a, b in
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
    def _padded(plane: Any) -> Any:
        import numpy as np

        y = plane.detach().cpu().double().numpy()
        h, w = y.shape
        return np.pad(y, ((0, -h % 8), (0, -w % 8)), mode="edge")

    def _score(self, reference: Any, test: Any) -> float:
        import numpy as np
        from psnr_hvsm import psnr_hvs_hvsm

        ref = reference.derived("psnr-hvs-y", lambda image: self._padded(_planes(reference)[0]))
        with np.errstate(invalid="ignore", divide="ignore"):  # masked by the library itself
            hvs, hvs_m = psnr_hvs_hvsm(ref, self._padded(_planes(test)[0]))
        return float(hvs_m if self.masking else hvs)


class PSNRHVSM(PSNRHVS):
    """PSNR-HVS-M (with contrast masking)."""

    def __init__(self) -> None:
        super().__init__(masking=True)


class VMAF(_JpegAIMetric):
    """VMAF v0.6.1 (vmaf-torch, one frame, no motion) on the 10-bit BT.709 Y scaled to
    [0, 255] (code / 4), as libvmaf reads 10-bit input."""

    name = "vmaf"
    requires = ("vmaf_torch",)
    library = "vmaf-torch"
    identity = make_identity("metric:vmaf", model="vmaf_v0.6.1", impl=lib_version("vmaf-torch"),
                             bits=10,
                             matrix="bt709-full", v=1)
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
        score = net(_y_codes(reference) / 4.0, _y_codes(test) / 4.0)
        return score.item()
