"""JPEG, WebP, AVIF and JPEG 2000 through Pillow: the anchors that always work offline.

The payload is exactly the encoded file Pillow writes, so bpp counts every byte a
viewer would need. Quality ladders (the rate points):

- JPEG, WebP: Pillow ``quality`` 5..95 step 5, Pillow's other defaults (as CompressAI's
  bench does: 4:2:0 chroma for JPEG, ``method=4`` for WebP);
- AVIF: ``quality`` 10..90 step 10 (libavif through Pillow, 4:2:0, ``speed=6``);
- JPEG 2000: the quality is the target PSNR in dB of OpenJPEG's ``quality_mode="dB"``
  (24..44 step 2), with the irreversible 9/7 wavelet, the RGB->YCbCr transform and a
  raw codestream (no JP2 boxes) -- the usual lossy configuration.

``options`` adds or overrides Pillow save options (e.g. ``{"subsampling": 0}``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import PIL
import torch
from PIL import Image, features

from jcsr_bench.imaging.images import check_image, from_numpy, to_numpy
from jcsr_bench.kit.errors import DataError, JcsrError, RegistryError
from jcsr_bench.kit.identity import make_identity
from jcsr_bench.kit.suggest import did_you_mean

_STEP5 = list(range(5, 100, 5))

# format -> (Pillow feature, save keyword for the quality, default ladder, default options)
FORMATS: dict[str, dict[str, Any]] = {
    "JPEG": {"feature": "jpg", "ladder": _STEP5, "options": {}},
    "WEBP": {"feature": "webp", "ladder": _STEP5, "options": {}},
    "AVIF": {"feature": "avif", "ladder": list(range(10, 100, 10)), "options": {}},
    "JPEG2000": {
        "feature": "jpg_2000",
        "ladder": list(range(24, 45, 2)),
        "options": {"quality_mode": "dB", "irreversible": True, "mct": 1, "no_jp2": True},
    },
    # Lossless: the quality is zlib's compress_level (0-9); every level decodes to the
    # input exactly. The clean-LR reference for training on uncompressed inputs.
    "PNG": {"feature": "zlib", "ladder": [6], "options": {}},
}
_ALIASES = {"JPG": "JPEG", "J2K": "JPEG2000", "JP2": "JPEG2000", "JPEG-2000": "JPEG2000"}
_QUALITY_KEYS = {"quality", "quality_layers", "compress_level"}


def _format_name(name: str) -> str:
    key = str(name).strip().upper().replace(" ", "")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise RegistryError(
            f"unknown pillow codec format {name!r}." + did_you_mean(key, FORMATS)
        )
    return key


class PillowCodec:
    """One Pillow image format at a quality ladder; exact byte counts, no weights."""

    def __init__(
        self,
        format: str = "JPEG",  # noqa: A002 - the registry key is `format`
        qualities: Iterable[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.format = _format_name(format)
        spec = FORMATS[self.format]
        self.feature = spec["feature"]
        if not features.check(self.feature):
            raise JcsrError(
                f"Pillow {PIL.__version__} here cannot write {self.format}: its "
                f"'{self.feature}' feature is missing (PIL.features.check({self.feature!r}) "
                "is False). Install a Pillow build with it, or drop this codec."
            )
        options = dict(options or {})
        clash = _QUALITY_KEYS & set(options)
        if clash:
            raise RegistryError(
                f"pillow option(s) {sorted(clash)} are set per rate point by `qualities`; "
                "remove them from `options`"
            )
        self.options = {**spec["options"], **options}
        ladder = list(spec["ladder"] if qualities is None else qualities)
        if not ladder:
            raise RegistryError(f"{self.format}: `qualities` must not be empty")
        for q in ladder:
            self._validate_quality(q)
        self.qualities = ladder

    def _validate_quality(self, q: Any) -> None:
        if self.format == "JPEG2000":
            ok = isinstance(q, (int, float)) and not isinstance(q, bool) and q > 0
            what = "a target PSNR in dB (> 0)"
        elif self.format == "PNG":
            ok = isinstance(q, int) and not isinstance(q, bool) and 0 <= q <= 9
            what = "a zlib compress_level 0..9"
        else:
            ok = isinstance(q, int) and not isinstance(q, bool) and 0 <= q <= 100
            what = "an integer 0..100"
        if not ok:
            raise RegistryError(f"{self.format} quality must be {what}, got {q!r}")

    @cached_property
    def identity(self) -> str:
        """Format, options, and the Pillow and codec-library versions (they change bytes)."""
        return make_identity(
            f"pillow:{self.format.lower()}",
            format=self.format,
            options=self.options,
            pillow=PIL.__version__,
            library=features.version(self.feature),
        )

    def __repr__(self) -> str:
        return f"PillowCodec({self.format!r}, qualities={self.qualities})"

    def _save_kwargs(self, quality: Any) -> dict[str, Any]:
        if quality not in self.qualities:
            raise JcsrError(
                f"quality {quality!r} is not in the {self.format} ladder; valid qualities: "
                f"{self.qualities}"
            )
        if self.format == "JPEG2000":
            return {**self.options, "quality_layers": [quality]}
        if self.format == "PNG":
            return {**self.options, "compress_level": int(quality)}
        return {**self.options, "quality": int(quality)}

    def encode(self, image: torch.Tensor, quality: Any) -> bytes:
        """The encoded file's bytes."""
        kwargs = self._save_kwargs(quality)
        pil = Image.fromarray(_to_numpy(image), mode=None)
        buffer = io.BytesIO()
        try:
            pil.save(buffer, format=self.format, **kwargs)
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{self.format} encoder failed at quality {quality!r}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes) -> torch.Tensor:
        """The 8-bit RGB image of an encoded file; corrupt or truncated data -> DataError."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or not data:
            raise DataError(f"a {self.format} payload is non-empty bytes")
        try:
            with Image.open(io.BytesIO(bytes(data))) as pil:
                if pil.format != self.format:
                    raise DataError(
                        f"payload is a {pil.format} file, not {self.format}; was it made by "
                        "another codec?"
                    )
                pil.load()
                rgb = np.asarray(pil.convert("RGB"))
        except DataError:
            raise
        except Exception as exc:  # Pillow raises many types on corrupt input
            raise DataError(
                f"corrupt or truncated {self.format} payload ({len(data)} bytes): {exc}"
            ) from exc
        return from_numpy(rgb)


def _to_numpy(image: Any) -> np.ndarray:
    if min(check_image(image, "codec input").shape[1:]) < 1:
        raise DataError(f"cannot encode an empty image of shape {list(image.shape)}")
    return to_numpy(image)
