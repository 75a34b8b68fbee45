"""Image-quality functions, exactly as docs/metrics.md's conventions define them.

Inputs are 8-bit RGB images (``torch.uint8``, ``[3, H, W]``) of the same shape, on any
device, or :class:`PreparedImage` wrappers of them: an image the engine compares many times
(the HR reference of every cell of one image) is moved to the run's device and its derived
versions (MS-SSIM's pyramid) are computed once, not once per
metric and cell. The functions are pure otherwise.

- ``psnr_rgb``: data range 255, MSE over every RGB sample of one image, computed with
  CompressAI's evaluator's own float32 arithmetic so that the numbers equal its numbers
  bit for bit. The exact (float64) value differs by float32 rounding of 20·log10(255),
  the mean, the logarithm and the difference: under 2e-5 dB by a rounding analysis;
  measured at most 4.4e-6 dB on the bundled photos (JPEG q5–98, ×4 bicubic, noise;
  143 pairs) and 8.2e-6 dB on random pairs above 64 dB, where one float32 step of the
  result is already 7.6e-6 dB.
- ``psnr_y``: BT.601 luma in the 16-235 range (``Y = 16 + (65.481 R + 128.553 G +
  24.966 B) / 255``, not rounded, as BasicSR), ``border`` pixels cropped at each side.
- ``ms_ssim_rgb``: pytorch-msssim's values, data range 255, linear; 5 scales need a short
  side > 160 px, smaller images raise :class:`~jcsr_bench.NotApplicable` with the reason.
  On the CPU :mod:`jcsr_bench.imaging.ssim` computes them (banded, pytorch-msssim's float32
  arithmetic; equal to ~1e-7), on CUDA pytorch-msssim itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jcsr_bench.components import NotApplicable
from jcsr_bench.imaging import ssim

if TYPE_CHECKING:
    import torch

MS_SSIM_MIN_SIDE = 160  # (win_size 11 - 1) * 2**4: pytorch-msssim's bound for 5 scales
BT601_Y = (65.481, 128.553, 24.966)
BAND_PIXELS = 1 << 20  # psnr-y/psnr-rgb work a band at a time (8 MB per float64 plane)
KEEP_LUMA_PIXELS = 3_000_000  # a prepared reference keeps its luma up to ~DIV2K size


class PreparedImage:
    """An image as the metrics of a run use it: on the run's device (moved once), with
    derived versions computed once and shared by every metric and cell that reads it.

    ``source`` is the tensor as given (CPU, the plugin contract: third-party metrics get
    it), ``image`` the same pixels on ``device``. Images are never modified in place, so a
    derived value stays valid as long as the object lives.
    """

    def __init__(self, image: torch.Tensor, device: str | None = None) -> None:
        self.source = image
        self.image = image if device is None else image.to(device)
        self._derived: dict[str, Any] = {}

    def derived(self, key: str, make: Callable[[torch.Tensor], Any]) -> Any:
        """``make(image)``, computed on the first request for ``key`` and then reused."""
        if key not in self._derived:
            self._derived[key] = make(self.image)
        return self._derived[key]


def prepare(image: torch.Tensor | PreparedImage, device: str | None = None) -> PreparedImage:
    """``image`` wrapped as a :class:`PreparedImage` (returned as is when it already is one)."""
    return image if isinstance(image, PreparedImage) else PreparedImage(image, device)


_LAST_PREPARED: dict[str, tuple[Any, str | None, PreparedImage]] = {}


def _prepared_once(role: str, image: Any, device: str | None) -> PreparedImage:
    """The :class:`PreparedImage` of ``image`` for ``role``, reused while the same tensor
    object comes back: the engine scores every cell of one image against one HR tensor."""
    last = _LAST_PREPARED.get(role)
    if last is not None and last[0] is image and last[1] == device:
        return last[2]
    prepared = prepare(image, device)
    _LAST_PREPARED[role] = (image, device, prepared)
    return prepared


def release_prepared() -> None:
    """Forget the last prepared reference and test (and all they derived: ~0.5 GB for a
    24 MP photo under the JPEG AI set), once the metrics of a run are done."""
    _LAST_PREPARED.clear()


def compute_metric(metric: Any, reference: Any, test: Any, device: str | None = None,
                   move: Callable[[Any], Any] | None = None) -> float:
    """``metric.compute(reference, test)`` as the engine calls it, once per metric and cell.

    A metric that declares ``accepts_prepared = True`` (the built-in ones) runs on
    ``device``: it is moved there by ``move`` (the engine's once-per-object ``.to``), and
    receives :class:`PreparedImage` objects on that device; the reference is prepared once
    per image (the same tensor for every cell), the test once per cell, whatever the number
    of metrics. Any other metric is left where it is and receives the plain CPU tensors of
    the plugin contract.
    """
    if getattr(metric, "accepts_prepared", False):
        if move is not None:
            metric = move(metric)
        return metric.compute(_prepared_once("reference", reference, device),
                              _prepared_once("test", test, device))
    return metric.compute(reference, test)


def _check_pair(reference: torch.Tensor | PreparedImage, test: torch.Tensor | PreparedImage
                ) -> tuple[PreparedImage, PreparedImage]:
    """Both images prepared (the test on the reference's device), checked to be 8-bit RGB
    of one size."""
    from jcsr_bench.imaging.images import check_image

    reference = prepare(reference)
    test = prepare(test, str(reference.image.device))
    check_image(reference.image, "reference image")
    check_image(test.image, "test image")
    if reference.image.shape != test.image.shape:
        raise ValueError(f"reference {list(reference.image.shape)} and test "
                         f"{list(test.image.shape)} differ in size")
    return reference, test


def _psnr_from_sse(sse: float, count: int, peak: float = 255.0) -> float:
    if sse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak * count / sse)


def psnr_rgb(reference: torch.Tensor | PreparedImage, test: torch.Tensor | PreparedImage
             ) -> float:
    """PSNR in dB over all RGB samples, data range 255, as CompressAI's evaluator computes
    it: ``20 log10(255) - 10 log10(mean((a - b)^2))`` on float32 tensors.

    The difference and its square are formed in place in one float32 copy (the test image
    is converted a chunk at a time): the same
    values as CompressAI's ``(a.float() - b.float()).pow(2)`` (exact integers), so the same
    mean, with one float copy of the image instead of four.
    """
    import torch

    reference, test = _check_pair(reference, test)
    squared = torch.empty(reference.image.shape, device=reference.image.device)
    squared.copy_(reference.image)
    chunks = zip(squared.view(-1).split(BAND_PIXELS),
                 test.image.reshape(-1).split(BAND_PIXELS))
    for difference, tested in chunks:
        difference.sub_(tested.float())
    mse = squared.square_().mean()
    if mse.item() == 0:
        return math.inf
    return (20 * math.log10(255) - 10 * torch.log10(mse)).item()


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (16-235) of an 8-bit RGB image, float64 ``[H, W]``, not rounded.

    ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``, summed left to right in place (the
    order of a sum over the channel axis: the same float64 values, a third of the work).
    """
    import torch

    luma = image[0].to(torch.float64).mul_(BT601_Y[0])
    for channel, weight in zip(image[1:], BT601_Y[1:], strict=True):
        luma.add_(channel.to(torch.float64).mul_(weight))
    return luma.div_(255.0).add_(16.0)


def psnr_y(reference: torch.Tensor | PreparedImage, test: torch.Tensor | PreparedImage,
           border: int = 4) -> float:
    """PSNR in dB on BT.601 luma, ``border`` pixels cropped at each side (SR convention);
    float64, a band of rows at a time so that memory stays bounded on large images."""
    reference, test = _check_pair(reference, test)
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    height, width = reference.image.shape[1:]
    if 2 * border >= min(height, width):
        raise NotApplicable(
            f"image {width}x{height} px has nothing left after cropping {border} px borders"
        )
    columns = slice(border, width - border)
    rows = max(1, BAND_PIXELS // width)
    bands = [(slice(None), slice(top, min(top + rows, height - border)), columns)
             for top in range(border, height - border, rows)]

    def reference_luma(image: torch.Tensor) -> list[torch.Tensor]:
        return [rgb_to_y(image[band]) for band in bands]

    if height * width <= KEEP_LUMA_PIXELS:  # kept for the image's other cells (8 B/pixel)
        references = reference.derived(f"psnr-y luma:{border}:{rows}", reference_luma)
    else:
        references = (rgb_to_y(reference.image[band]) for band in bands)
    sse = 0.0
    for band, reference_y in zip(bands, references, strict=True):
        sse += float((rgb_to_y(test.image[band]) - reference_y).square_().sum())
    return _psnr_from_sse(sse, (height - 2 * border) * (width - 2 * border))


def ms_ssim_rgb(reference: torch.Tensor | PreparedImage, test: torch.Tensor | PreparedImage
                ) -> float:
    """MS-SSIM (pytorch-msssim's values, 5 scales, data range 255) on 8-bit RGB, linear.

    The reference's pyramid is derived once per prepared image.
    """
    reference, test = _check_pair(reference, test)
    height, width = reference.image.shape[1:]
    if min(height, width) <= MS_SSIM_MIN_SIDE:
        raise NotApplicable(
            f"short side {min(height, width)} px <= {MS_SSIM_MIN_SIDE}: the 5-scale MS-SSIM "
            "needs a short side > 160 px"
        )
    prepared = reference.derived("ms-ssim", ssim.SSIMReference)
    return ssim.ms_ssim(prepared, test.image)
