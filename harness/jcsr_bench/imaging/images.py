"""Image loading and normalisation: every file becomes 8-bit RGB, ``uint8 [3, H, W]``.

All stages exchange 8-bit RGB (what a real decoder hands to a viewer), so the loader is
the one place where odd files are made regular. The rules, applied in this order:

1. the file is fully decoded (a truncated or non-image file raises :class:`DataError`
   naming the file -- never a silently partial image);
2. the EXIF orientation tag is applied (the pixels are rotated/flipped as a viewer shows
   them);
3. multi-frame files (GIF, TIFF) use their first frame;
4. 16-bit samples become 8-bit by keeping the high byte (``v >> 8``), the same rule
   Pillow applies to 16-bit colour PNGs, so gray and colour agree; ``v8 * 257`` maps
   back to ``v8`` exactly;
5. grayscale (``1``, ``L``, ``I;16``) is replicated into R = G = B;
6. transparency (``RGBA``, ``LA``, ``PA``, palette or colour-key ``tRNS``) is composited
   on **white**, ``round((c * a + 255 * (255 - a)) / 255)``, with an
   :class:`ImageWarning` when any pixel is not opaque (a fully opaque alpha channel is
   dropped silently);
7. CMYK, YCbCr, LAB, HSV are converted with Pillow's ``convert("RGB")`` (CMYK naively:
   embedded ICC profiles are ignored, as they are for RGB files);
8. 32-bit float images (mode ``F``) are refused: their range is ambiguous.

``LOADER_VERSION`` changes whenever these rules change; dataset identities include it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from jcsr_bench.kit.atomic import atomic_write_with
from jcsr_bench.kit.errors import DataError

LOADER_VERSION = 1

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


class ImageWarning(UserWarning):
    """An image was changed while loading in a way worth knowing (e.g. alpha on white)."""


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read any image Pillow can decode as RGB ``uint8 [3, H, W]`` (rules: module doc)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return from_pil(im, source=str(path))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image too large to decode safely ({exc}); raise "
                        "PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise DataError(f"{path}: cannot decode image ({exc}); the file is corrupt or "
                        "truncated -- replace it, or let the dataset skip bad files "
                        "(skip_bad: true)") from None


def from_pil(im: Image.Image, source: str = "<image>") -> torch.Tensor:
    """Normalise a Pillow image to RGB ``uint8 [3, H, W]`` (rules: module doc)."""
    # np.array copies: Pillow's array is read-only, and for a 1x1 image the transpose is
    # already contiguous, so ascontiguousarray would hand torch the read-only buffer
    return torch.from_numpy(np.array(_normalise(im, source).transpose(2, 0, 1), order="C"))


def _normalise(im: Image.Image, source: str) -> np.ndarray:
    """The loader's rules, returning an ``H x W x 3`` uint8 array."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    im = ImageOps.exif_transpose(im) or im
    mode = im.mode
    if mode == "F":
        raise DataError(f"{source}: 32-bit float image (mode F) has no defined 8-bit range; "
                        "convert it to an 8- or 16-bit PNG first")
    if mode in _SIXTEEN_BIT:
        gray = np.asarray(im).astype(np.int64)
        gray = (np.clip(gray, 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        return _composite_on_white(np.asarray(im.convert("RGBA")), source)
    if mode != "RGB":
        try:
            im = im.convert("RGB")
        except ValueError:
            raise DataError(f"{source}: Pillow cannot convert colour mode {mode} to RGB; "
                            "save the image as 8-bit RGB first") from None
    return np.asarray(im, dtype=np.uint8)


def _composite_on_white(rgba: np.ndarray, source: str) -> np.ndarray:
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[:, :, :3])
    warnings.warn(f"{source}: has transparent pixels; composited on white", ImageWarning,
                  stacklevel=4)
    color = rgba[:, :, :3].astype(np.uint32)
    out = (color * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def check_image(image: object, what: str = "image",
                shape: Sequence[int] | None = None) -> torch.Tensor:
    """``image`` itself, if it is a uint8 ``[3, H, W]`` tensor (of ``shape`` when given);
    else a ``DataError`` naming ``what``. The one check every stage boundary uses."""
    if not isinstance(image, torch.Tensor):
        raise DataError(f"{what}: expected a torch.uint8 tensor [3, H, W], got "
                        f"{type(image).__name__}")
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise DataError(f"{what}: expected torch.uint8 [3, H, W], got {image.dtype} "
                        f"{list(image.shape)}")
    if shape is not None and list(image.shape) != list(shape):
        raise DataError(f"{what}: has shape {list(image.shape)}, expected {list(shape)}")
    return image


def pixel_hash(image: torch.Tensor) -> str:
    """Content hash of an image tensor (shape + bytes): the identity of an in-memory image."""
    import hashlib

    data = image.detach().cpu().contiguous().numpy().tobytes()
    return "px:" + hashlib.sha256(f"{list(image.shape)}:".encode() + data).hexdigest()


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """``uint8 [3, H, W]`` tensor -> contiguous ``H x W x 3`` uint8 array (a copy)."""
    check_image(image)
    return np.ascontiguousarray(image.detach().cpu().permute(1, 2, 0).numpy())


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """``H x W`` (gray) or ``H x W x 3`` uint8 array -> ``uint8 [3, H, W]`` tensor."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an H x W or H x W x 3 array, got shape {array.shape}")
    return torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C"))  # own copy


def to_pil(image: torch.Tensor) -> Image.Image:
    """``uint8 [3, H, W]`` tensor -> Pillow ``RGB`` image."""
    return Image.fromarray(to_numpy(image))


def save_image(image: torch.Tensor, path: str | os.PathLike[str], compress_level: int = 1
               ) -> Path:
    """Write a lossless PNG atomically (temp file + rename): readers never see half a file."""
    pil = to_pil(image)
    atomic_write_with(Path(path), lambda fh: pil.save(fh, format="PNG",
                                                      compress_level=compress_level))
    return path
