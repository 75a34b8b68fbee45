"""Training pairs: whole images through the frozen codec once, cached, then aligned crops.

Every training image's *whole* LR is compressed and decoded exactly as at evaluation,
never patches: block grids, padding and entropy-model context would differ from
evaluation. "Exactly" means ``decode(encode(...))``; a codec's fast ``reconstruct``
(no entropy coding) is used instead only when the codec declares it bit-exact
(``reconstruct_exact``): for the autoregressive CompressAI models it differs from the
real decode by several levels, and SR would learn artifacts evaluation never shows.
The HR image (mod-cropped to the scale), its clean LR and each quality's reconstruction
are cached as ``.npy`` files under ``cache_dir()/training`` and memory-mapped, so a
large training set (DF2K) is read from disk one crop at a time instead of being held in
memory. Disk cost: HR once per dataset (~3 bytes/pixel: about 30 GB for DF2K), plus 1/16
of that per codec quality. Keys are content identities (dataset, codec, quality, scale,
LR kernel), so a changed codec or dataset can never reuse stale reconstructions.

Crops are a pure function of ``(seed, step)``: resuming at step N draws exactly the
batches an uninterrupted run draws.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jcsr_bench.imaging.lr import make_lr, mod_crop
from jcsr_bench.imaging.patches import aligned_crop, flip_pair
from jcsr_bench.kit.atomic import atomic_write, atomic_write_with
from jcsr_bench.kit.errors import DataError
from jcsr_bench.kit.identity import digest, safe_filename
from jcsr_bench.kit.paths import cache_dir

PAIRS_VERSION = 1  # bump when what is cached changes


@dataclass
class PairSet:
    """Aligned (LR input, HR target) images, uint8 ``[3, H, W]`` arrays (maybe mmap'd)."""

    names: list[str]
    lr: Sequence[np.ndarray]
    hr: Sequence[np.ndarray]
    scale: int
    identity: str  # what the data is: dataset, codec, quality, scale, kernel
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Atomic ``np.save``: a crash never leaves a half-written array behind."""
    atomic_write_with(path, lambda handle: np.save(handle, np.ascontiguousarray(array)))


class LazyArrays(Sequence):
    """``.npy`` files opened (memory-mapped) on access, never all at once.

    A memory map holds a file descriptor; DF2K at 8 qualities would be ~30,000 of them.
    Shapes are read from the headers up front (crop sampling needs them).
    """

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.shapes = [_npy_shape(p) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        return np.load(self.paths[index], mmap_mode="r", allow_pickle=False)


def _npy_shape(path: Path) -> tuple[int, ...]:
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, _ = read(handle)
    return tuple(shape)


def _shapes(arrays: Sequence[np.ndarray]) -> list[tuple[int, ...]]:
    shapes = getattr(arrays, "shapes", None)
    return list(shapes) if shapes is not None else [tuple(a.shape) for a in arrays]


def decoding_route(codec: Any) -> str:
    """``reconstruct`` when the codec declares it equal to its real decode, else ``decode``."""
    exact = getattr(codec, "reconstruct_exact", False) is True
    return "reconstruct" if exact and callable(getattr(codec, "reconstruct", None)) else "decode"


def reconstruct(codec: Any, image: torch.Tensor, quality: Any) -> torch.Tensor:
    """What evaluation decodes for a whole image: ``decode(encode())`` (or exact twin)."""
    if decoding_route(codec) == "reconstruct":
        out = codec.reconstruct(image, quality)
    else:
        out = codec.decode(codec.encode(image, quality))
    if tuple(out.shape) != tuple(image.shape) or out.dtype != torch.uint8:
        raise DataError(
            f"codec {getattr(codec, 'identity', codec)!r} at quality {quality!r} returned "
            f"{out.dtype} {tuple(out.shape)} for a uint8 {tuple(image.shape)} input; a codec "
            "must decode to uint8 [3, H, W] of the input's size"
        )
    return out


class _Dirs:
    def __init__(self, dataset_identity: str, scale: int, kernel: str):
        root = cache_dir() / "training" / f"v{PAIRS_VERSION}"
        base = {"dataset": dataset_identity, "scale": scale}
        self.hr = root / "hr" / digest(base)
        self.lr = root / "lr" / digest({**base, "kernel": kernel})
        self.base = {**base, "kernel": kernel}
        self.root = root

    def recon(self, codec_identity: str, quality: Any, route: str) -> Path:
        return self.root / "recon" / digest(recon_key(self.base, codec_identity, quality,
                                                       route))


def recon_key(base: dict[str, Any], codec_identity: str | None, quality: Any,
              route: str) -> dict[str, Any]:
    """Cache and identity key of one quality's LR inputs (clean LR: quality None).

    Entries made by an exact ``reconstruct`` keep their earlier keys (they were right);
    real decodes are keyed apart, so no inexact reconstruction cached before is ever
    served in place of a decode.
    """
    key = {**base, "codec": codec_identity, "quality": None if quality is None else str(quality)}
    if route != "reconstruct":
        key["via"] = route
    return key


def prepare_pairs(
    dataset: Any,
    *,
    scale: int = 4,
    kernel: str = "matlab",
    codec: Any = None,
    qualities: Sequence[Any] = (),
    device: str | torch.device | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[Any, PairSet]:
    """Cache HR, clean LR and each quality's reconstruction; one pass over the dataset.

    Returns ``{quality: PairSet(lr=reconstruction)}`` for each of ``qualities`` and
    ``{None: PairSet(lr=clean LR)}``. Images already cached are not recomputed; a
    complete cache is used without reading the dataset at all.
    """
    dataset_identity = str(getattr(dataset, "identity", ""))
    if not dataset_identity:
        raise DataError(f"dataset {dataset!r} has no identity; cannot key its training cache")
    dirs = _Dirs(dataset_identity, scale, kernel)
    codec_identity = str(codec.identity) if codec is not None else ""
    route = decoding_route(codec) if codec is not None else "reconstruct"
    targets: dict[Any, Path] = {None: dirs.lr}
    for quality in qualities:
        targets[quality] = dirs.recon(codec_identity, quality, route)
    manifest_key = f"complete-{limit or 'all'}.json"
    names = _complete_names(dirs.hr, manifest_key, targets.values())
    if names is None:
        names = _materialise(dataset, dirs, targets, codec, scale, kernel, device, limit,
                             progress)
        for folder in (dirs.hr, *targets.values()):
            atomic_write(folder / manifest_key, json.dumps(names, indent=1))
    hr = LazyArrays([dirs.hr / f"{safe_filename(n)}.npy" for n in names])
    out: dict[Any, PairSet] = {}
    for quality, folder in targets.items():
        lr = LazyArrays([folder / f"{safe_filename(n)}.npy" for n in names])
        clean = quality is None
        ident = {**recon_key(dirs.base, None if clean else codec_identity, quality,
                             "reconstruct" if clean else route), "limit": limit}
        out[quality] = PairSet(list(names), lr, hr, scale, digest(ident),
                               {"dataset": dataset_identity, "images": len(names),
                                "scale": scale, "kernel": kernel,
                                "codec": ident["codec"], "quality": quality,
                                "decoded_by": None if clean else route})
    return out


def _complete_names(hr_dir: Path, manifest: str, folders: Any) -> list[str] | None:
    lists = []
    for folder in (hr_dir, *folders):
        path = folder / manifest
        if not path.is_file():
            return None
        lists.append(json.loads(path.read_text()))
    if any(names != lists[0] for names in lists):
        return None
    names = lists[0]
    for folder in (hr_dir, *folders):
        if not all((folder / f"{safe_filename(n)}.npy").is_file() for n in names):
            return None
    return names


def _materialise(dataset, dirs, targets, codec, scale, kernel, device, limit, progress):
    from tqdm import tqdm

    if codec is not None and device is not None and callable(getattr(codec, "to", None)):
        codec.to(device)
    total = len(dataset) if hasattr(dataset, "__len__") else None
    if limit is not None and total is not None:
        total = min(total, limit)
    names: list[str] = []
    bar = tqdm(dataset, total=total, desc="codec pairs", unit="img", disable=not progress,
               leave=False)
    with torch.inference_mode():
        for name, image in bar:
            if limit is not None and len(names) >= limit:
                break
            name = str(name)
            if name in names:
                raise DataError(f"dataset {dataset.identity!r} yields the name {name!r} twice")
            file = f"{safe_filename(name)}.npy"
            hr_path = dirs.hr / file
            hr = mod_crop(image, scale)
            if hr.shape[-1] < scale or hr.shape[-2] < scale:
                raise DataError(f"training image {name!r} {tuple(image.shape)} is smaller "
                                f"than the scale {scale}")
            if not hr_path.is_file():
                _save_npy(hr_path, hr.numpy())
            lr = None
            for quality, folder in targets.items():
                path = folder / file
                if path.is_file():
                    continue
                if lr is None:
                    lr = make_lr(hr, scale, kernel) if scale > 1 else hr
                out = lr if quality is None else reconstruct(codec, lr, quality)
                _save_npy(path, out.numpy())
            names.append(name)
    if not names:
        raise DataError(f"dataset {dataset.identity!r} has no images to train on")
    return names


def from_images(images: Sequence[torch.Tensor], lrs: Sequence[torch.Tensor], scale: int,
                identity: str = "in-memory") -> PairSet:
    """A PairSet from tensors already in memory (tests, programmatic use)."""
    hr = [mod_crop(im, scale).numpy() for im in images]
    lr = [im.numpy() for im in lrs]
    for h, lo in zip(hr, lr):
        if h.shape[-2] != lo.shape[-2] * scale or h.shape[-1] != lo.shape[-1] * scale:
            raise DataError(f"LR {lo.shape} is not HR {h.shape} / {scale}")
    return PairSet([str(i) for i in range(len(hr))], lr, hr, scale, identity)


def sample_batch(
    pairs: PairSet, batch: int, patch: int, seed: int, step: int, augment: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned random crops for ``step``: float ``[B, 3, p/s, p/s]`` LR, ``[B, 3, p, p]`` HR.

    Deterministic in ``(seed, step)`` alone; flips and 90-degree rotations are applied
    identically to both images (BasicSR's augmentation).
    """
    scale = pairs.scale
    lp = patch // scale
    usable = [i for i, shape in enumerate(_shapes(pairs.lr))
              if shape[-2] >= lp and shape[-1] >= lp]
    if not usable:
        what = f"HR patches (LR {lp}x{lp})" if scale > 1 else "patches"
        raise DataError(
            f"no training image is large enough for {patch}x{patch} {what}; use a smaller "
            "--patch"
        )
    rng = np.random.default_rng([int(seed), int(step)])
    lrs, hrs = [], []
    for _ in range(batch):
        index = usable[int(rng.integers(len(usable)))]
        lr_crop, hr_crop = aligned_crop(pairs.lr[index], pairs.hr[index], lp, scale, rng)
        if augment:
            lr_crop, hr_crop = flip_pair(np.asarray(lr_crop), np.asarray(hr_crop), rng)
        lrs.append(np.ascontiguousarray(lr_crop))
        hrs.append(np.ascontiguousarray(hr_crop))
    lr_t = torch.from_numpy(np.stack(lrs)).float().div_(255.0)
    hr_t = torch.from_numpy(np.stack(hrs)).float().div_(255.0)
    return lr_t, hr_t
