"""Content-addressed on-disk cache for codec outputs: payloads and decoded images.

An entry is a folder named by a key (a hash of everything that determines its content),
so a changed input can never be served a stale output: it simply has another key.
Files are written to a temporary name and renamed (atomic), and an entry's ``meta.json``
is written last, so a process killed mid-write leaves no entry that looks complete.
Decoded images are stored as PNG (lossless 8-bit RGB). ``meta.json`` records the
payload's SHA-256 and the decoded image's pixel hash, and both are checked when an entry
is read: a file changed on disk (a black image swapped in) is recomputed with a
:class:`CacheWarning`, never scored. A learned codec's decoded latent
(``Codec.decode_latent``, stored only when a latent-consuming SR model needed it) is a
zlib-compressed float32 ``.npy``: at most ``4 * C`` bytes per 16x16 block of the padded
LR image (C/64 bytes per LR pixel: 3 B for bmshj2018-hyperprior q1-5, C = 192; 5 B for
q6-8, C = 320; about 1 MB for a 510x339 DIV2K LR at q8 before compression, and
quantised latents are mostly zeros, so a few times less after). LR images have their
own cache (``jcsr_bench.imaging.lr.cached_lr``), checked the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jcsr_bench.components import Latent
from jcsr_bench.kit.atomic import atomic_write
from jcsr_bench.kit.disk import probe_folder, writing
from jcsr_bench.kit.errors import CacheWarning
from jcsr_bench.kit.paths import cache_dir

if TYPE_CHECKING:
    import torch

META = "meta.json"
ELSEWHERE = "set JCSR_BENCH_CACHE to another folder"
REMEDY = f"{ELSEWHERE}; cells already finished are kept and the next run resumes"


def default_root() -> Path:
    """``jcsr_bench.kit.paths.cache_dir()/"cells"`` (``JCSR_BENCH_CACHE`` overrides)."""
    return cache_dir() / "cells"


def encode_png(image: torch.Tensor) -> bytes:
    """Lossless PNG bytes of an 8-bit RGB ``[3, H, W]`` tensor (fast compression level)."""
    from jcsr_bench.imaging.images import to_pil

    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(data: bytes) -> torch.Tensor:
    """The ``[3, H, W]`` uint8 tensor stored by :func:`encode_png`."""
    import numpy as np
    from PIL import Image

    from jcsr_bench.imaging.images import from_numpy

    with Image.open(io.BytesIO(data)) as img:
        return from_numpy(np.asarray(img.convert("RGB")))


def _digests(payload: bytes, decoded: torch.Tensor) -> tuple[str, str]:
    from jcsr_bench.imaging.images import pixel_hash

    return hashlib.sha256(payload).hexdigest(), pixel_hash(decoded)


@dataclass
class CodecOutput:
    """A codec stage's result: the whole payload, the decoded image, the stage timings,
    and the decoded latent when a latent-consuming SR model needs it."""

    payload: bytes
    decoded: torch.Tensor
    encode_s: float
    decode_s: float
    latent: Latent | None = None


def encode_latent(latent: Latent) -> tuple[bytes, dict[str, Any]]:
    """Lossless bytes of a latent's tensor (zlib'd ``.npy``) and its other fields."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, latent.y.numpy().astype(np.float32), allow_pickle=False)
    fields = {"quality": latent.quality, "size": list(latent.size),
              "offset": list(latent.offset), "stride": latent.stride,
              "shape": list(latent.y.shape)}
    return zlib.compress(buffer.getvalue(), 1), fields


def decode_latent(data: bytes, fields: dict[str, Any]) -> Latent:
    """The latent stored by :func:`encode_latent`."""
    import numpy as np
    import torch

    array = np.load(io.BytesIO(zlib.decompress(data)), allow_pickle=False)
    if list(array.shape) != fields["shape"]:
        raise ValueError("latent shape differs from its metadata")
    return Latent(torch.from_numpy(array), fields["quality"], tuple(fields["size"]),
                  tuple(fields["offset"]), int(fields["stride"]))


class Cache:
    """Stage outputs keyed by content identity under ``root`` (default: cache_dir()/cells)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    # -- codec outputs ---------------------------------------------------------------
    def load_codec(self, key: str) -> CodecOutput | None:
        """The stored codec output, or None when absent or unreadable (then recompute)."""
        folder = self.entry(key)
        try:
            meta = json.loads((folder / META).read_text())
            payload = (folder / "payload.bin").read_bytes()
            decoded = decode_png((folder / "decoded.png").read_bytes())
            latent = (decode_latent((folder / "latent.npy.z").read_bytes(), meta["latent"])
                      if meta.get("latent") else None)
        except (OSError, ValueError, KeyError, zlib.error):
            return None
        if len(payload) != meta.get("bytes") or list(decoded.shape) != meta.get("shape"):
            return None
        if _digests(payload, decoded) != (meta.get("payload_sha256"), meta.get("decoded_hash")):
            if "decoded_hash" in meta:  # older entries have no digests: recomputed quietly
                warnings.warn(f"codec cache entry {folder} does not match its stored digest "
                              "(changed on disk?); recomputing it", CacheWarning,
                              stacklevel=2)
            return None
        return CodecOutput(payload, decoded, float(meta["encode_s"]), float(meta["decode_s"]),
                           latent)

    def save_codec(self, key: str, output: CodecOutput, info: dict[str, Any] | None = None) -> None:
        """Store an entry; an unusable cache folder raises ``StorageError`` naming it."""
        folder = self.entry(key)
        payload_sha256, decoded_hash = _digests(output.payload, output.decoded)
        meta = {
            "payload_sha256": payload_sha256,
            "decoded_hash": decoded_hash,
            "bytes": len(output.payload),
            "shape": list(output.decoded.shape),
            "encode_s": output.encode_s,
            "decode_s": output.decode_s,
            **(info or {}),
        }
        png = encode_png(output.decoded)
        latent = None
        if output.latent is not None:
            latent, meta["latent"] = encode_latent(output.latent)
        with writing("the codec cache", self.root, REMEDY):
            atomic_write(folder / "payload.bin", output.payload)
            atomic_write(folder / "decoded.png", png)
            if latent is not None:
                atomic_write(folder / "latent.npy.z", latent)
            atomic_write(folder / META, json.dumps(meta, sort_keys=True, default=str).encode())

    def check_writable(self) -> None:
        """Fail up front (``StorageError``) when the cache folder cannot be written."""
        probe_folder(self.root, "the codec cache", ELSEWHERE)
