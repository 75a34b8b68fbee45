"""Tiled, precision-guarded inference for any torch SR network.

Large images do not fit an SR network's activations in memory (a 512x512 input to
ESRGAN needs gigabytes at the x4 stage). Running the network on overlapping LR tiles
bounds the memory by the tile size; cropping each tile's overlap margin away and
keeping only its interior makes the stitched result match untiled inference (to within
rounding) as long as the overlap covers the context the network actually uses.

"fp32" is real fp32, also on CUDA (cuDNN's TF32 default is turned off around the call).
Reduced precision (bf16 / fp16) runs under ``torch.autocast`` so the weights stay fp32;
a tile whose output is not finite (the known fp16 failure: NaN / black outputs) is
recomputed in fp32 with a warning.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from jcsr_bench.kit.errors import DataError, JcsrError

Network = Callable[[torch.Tensor], torch.Tensor]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    """Validate a precision name early (at construction, not at the first image)."""
    if precision not in PRECISIONS:
        raise JcsrError(
            f"precision {precision!r} is not supported; use one of {', '.join(PRECISIONS)}"
        )
    return precision


def check_tiling(tile: int, overlap: int) -> tuple[int, int]:
    """Validate tile size and overlap (tile 0 = no tiling)."""
    if not isinstance(tile, int) or tile < 0:
        raise JcsrError(f"tile must be a non-negative integer (0 = no tiling), got {tile!r}")
    if not isinstance(overlap, int) or overlap < 0:
        raise JcsrError(f"tile_overlap must be a non-negative integer, got {overlap!r}")
    return tile, overlap


@contextlib.contextmanager
def exact_fp32(device_type: str) -> Iterator[None]:
    """Real fp32 convolutions on CUDA: cuDNN would use TF32 (10-bit mantissa) by default."""
    if device_type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32 = saved


def run_guarded(net: Network, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``net(x)`` in the requested precision, as fp32; non-finite output is redone in fp32."""
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is torch.float32:
        with exact_fp32(x.device.type):
            return net(x).float()
    with torch.autocast(device_type=x.device.type, dtype=dtype):
        out = net(x)
    out = out.float()
    if not torch.isfinite(out).all():
        warnings.warn(
            f"SR output in {precision} was not finite (NaN/inf); recomputed in fp32",
            RuntimeWarning,
            stacklevel=2,
        )
        with exact_fp32(x.device.type):
            out = net(x).float()
    return out


def _starts(size: int, tile: int) -> list[int]:
    return list(range(0, size, tile))


def tiled_forward(
    net: Network,
    x: torch.Tensor,
    scale: int,
    tile: int = 0,
    overlap: int = 16,
    precision: str = "fp32",
    out_device: torch.device | str | None = None,
) -> torch.Tensor:
    """Run ``net`` (NCHW float in, NCHW float out, ``scale`` x larger) tile by tile.

    The LR image is cut into a grid of ``tile`` x ``tile`` cells; each cell is run with
    ``overlap`` extra LR pixels of context on every side (clipped at the image border),
    and only the cell's own output region is kept. ``tile <= 0`` or an image no larger
    than one tile runs the network once. The output is assembled on ``out_device``
    (default: the input's device), so GPU memory holds one tile at a time.
    """
    check_tiling(tile, overlap)
    if x.dim() != 4:
        raise DataError(f"expected an NCHW tensor, got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        out = run_guarded(net, x, precision)
        return out if out_device is None else out.to(out_device)

    output: torch.Tensor | None = None
    for y0 in _starts(h, tile):
        for x0 in _starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            iy0, ix0 = max(y0 - overlap, 0), max(x0 - overlap, 0)
            iy1, ix1 = min(y1 + overlap, h), min(x1 + overlap, w)
            piece = run_guarded(net, x[:, :, iy0:iy1, ix0:ix1], precision)
            expected = ((iy1 - iy0) * scale, (ix1 - ix0) * scale)
            if tuple(piece.shape[-2:]) != expected:
                raise JcsrError(
                    f"SR network returned a {tuple(piece.shape[-2:])} tile for a "
                    f"{(iy1 - iy0, ix1 - ix0)} input; expected {expected} at scale {scale}"
                )
            if output is None:
                output = torch.empty(
                    (n, piece.shape[1], h * scale, w * scale),
                    dtype=piece.dtype,
                    device=out_device if out_device is not None else piece.device,
                )
            oy, ox = (y0 - iy0) * scale, (x0 - ix0) * scale
            output[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = piece[
                :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ].to(output.device)
            del piece
    assert output is not None
    return output


def to_float(image: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 ``[3, H, W]`` (checked) -> float ``[1, 3, H, W]`` in [0, 1] on ``device``."""
    from jcsr_bench.imaging.images import check_image

    return check_image(image, "SR input").to(device).unsqueeze(0).float().div_(255.0)


def to_uint8(output: torch.Tensor, model: str = "the SR model") -> torch.Tensor:
    """float ``[1, 3, H, W]`` -> uint8 ``[3, H, W]`` on the CPU: clamped, rounded.

    NaN would turn into black pixels scored as a real result: refused, naming ``model``."""
    if not bool(torch.isfinite(output).all()):
        raise DataError(f"{model}: the SR output holds NaN or infinite values (broken "
                        "weights?); no result is scored from it")
    return output[0].clamp(0, 1).mul(255.0).round().to(torch.uint8).cpu()


def upscale_image(
    net: Network,
    image: torch.Tensor,
    scale: int,
    device: torch.device | str = "cpu",
    tile: int = 0,
    overlap: int = 16,
    precision: str = "fp32",
    model: str = "the SR model",
) -> torch.Tensor:
    """The whole SR stage: uint8 image in, uint8 image (``scale`` x) out, no autograd;
    ``model`` names the network (and its weights) in errors."""
    with torch.inference_mode():
        x = to_float(image, device)
        out = tiled_forward(net, x, scale, tile, overlap, precision, out_device="cpu")
        return to_uint8(out, model)


class TiledSR:
    """Base of torch SR components: device, tiling, precision, 8-bit in and out.

    Subclasses provide ``scale`` and ``_network()`` (a callable NCHW float -> float).
    """

    scale: int

    def __init__(self, tile: int, tile_overlap: int, precision: str) -> None:
        self.tile, self.tile_overlap = check_tiling(tile, tile_overlap)
        self.precision = check_precision(precision)
        self.device = torch.device("cpu")

    def _inference_fields(self) -> dict[str, Any]:
        # Tiling changes outputs by at most rounding when the overlap covers the
        # network's context, but the overlap is the user's choice: a tiled run is keyed
        # apart from an untiled one so no cell can be served outputs it did not produce.
        fields: dict[str, Any] = {"precision": self.precision}
        if self.tile > 0:
            fields.update(tile=self.tile, tile_overlap=self.tile_overlap)
        return fields

    def _network(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def model_label(self) -> str:
        """How errors about this model's output name it (subclasses add the weight file)."""
        return type(self).__name__

    def upscale(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 ``[3, H, W]`` -> uint8 ``[3, scale*H, scale*W]`` (CPU)."""
        net = self._network()
        return upscale_image(
            net, image, self.scale, self.device, self.tile, self.tile_overlap, self.precision,
            self.model_label(),
        )
