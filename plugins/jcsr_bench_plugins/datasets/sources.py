"""Built-in datasets: scikit-image samples, folders, Kodak, DIV2K, DF2K, JPEG AI.

Every dataset is an ordered list of named image files. Common behaviour:

- ``names`` is fixed at construction (sorted, deterministic); ``limit=N`` keeps the
  first N; iteration yields ``(name, uint8 [3, H, W])`` through
  :func:`jcsr_bench.imaging.images.load_image`.
- ``identity`` is a content hash over the *file bytes* of the selected images (plus
  the loader's rule version and, for DIV2K with ``official_lr``, the LR files): cheap
  (no decoding), independent of where the files live, and equal on every machine with
  the same files. It is computed on first access and cached.
- A file that cannot be decoded raises :class:`DataError` naming it. ``skip_bad=True``
  instead checks (decodes) the candidates once, skips bad ones with a
  :class:`DataWarning`, and keeps ``names``/``len``/``identity`` consistent with
  what is iterated. The default is to stop: a silently smaller dataset changes results.

Roots. An explicit ``root`` (registry entry) wins. Otherwise the dataset looks under the
data root for its default folder name (``kodak``, ``DIV2K``, ``Flickr2K``,
``jpegai-test``): the data root is ``$JCSR_BENCH_DATA_ROOT`` (the CLI's ``--data-root``
sets it) or ``~/datasets``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from jcsr_bench.artifacts import weights
from jcsr_bench.artifacts.archives import safe_extract
from jcsr_bench.artifacts.hashing import cached_sha256, sha256_file
from jcsr_bench.imaging.images import LOADER_VERSION, load_image
from jcsr_bench.kit.errors import DataError
from jcsr_bench.kit.identity import make_identity
from jcsr_bench.kit.paths import cache_dir
from jcsr_bench.kit.suggest import did_you_mean

DATA_ROOT_ENV = "JCSR_BENCH_DATA_ROOT"
DEFAULT_DATA_ROOT = "~/datasets"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pnm", ".gif"})


class DataWarning(UserWarning):
    """A dataset skipped a file (``skip_bad``) or fell back to a default."""


def data_root() -> Path:
    """``$JCSR_BENCH_DATA_ROOT`` (set by ``--data-root``) or ``~/datasets``."""
    return Path(os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT).expanduser()


def resolve_root(root: str | os.PathLike[str] | None, default_name: str) -> Path:
    """An explicit root as given (``~`` expanded); else ``data_root() / default_name``."""
    if root:
        return Path(root).expanduser()
    return data_root() / default_name


def _check_limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DataError(f"limit must be a positive integer or null, got {limit!r}")
    return limit


def _where_hint() -> str:
    return (f"set the entry's root, pass --data-root DIR, or set {DATA_ROOT_ENV} "
            f"(default data root: {DEFAULT_DATA_ROOT})")


class ImageFilesDataset:
    """An ordered list of named image files with a lazily computed content identity."""

    label = "files"

    def __init__(self, files: Sequence[tuple[str, Path]], *, limit: int | None = None,
                 skip_bad: bool = False, root: Path | None = None) -> None:
        self.root = root
        self.skip_bad = bool(skip_bad)
        self.limit = _check_limit(limit)
        self._candidates = [(str(n), Path(p)) for n, p in files]
        self._paths = dict(self._candidates)
        if len(self._paths) != len(self._candidates):
            raise DataError(f"{self.label}: duplicate image names in {root}")
        self._names: list[str] | None = None
        self._identity: str | None = None
        self._hashes: dict[str, str] = {}

    # -- selection -------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The ordered image names (after ``limit`` and, with ``skip_bad``, the check)."""
        if self._names is None:
            self._names = self._select()
        return list(self._names)

    def _select(self) -> list[str]:
        names = [n for n, _ in self._candidates]
        if not self.skip_bad:
            return names[: self.limit] if self.limit else names
        good: list[str] = []
        for name in names:
            if self.limit and len(good) >= self.limit:
                break
            try:
                load_image(self._paths[name])
            except DataError as exc:
                warnings.warn(f"skipping a bad image (skip_bad): {exc}", DataWarning,
                              stacklevel=3)
                continue
            good.append(name)
        if not good:
            raise DataError(f"{self.label}: no readable images among {len(names)} files "
                            f"under {self.root}")
        return good

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name in self.names:
            yield name, self.load(name)

    def path(self, name: str) -> Path:
        """The file behind an image name."""
        try:
            return self._paths[name]
        except KeyError:
            raise DataError(f"{self.label}: no image named {name!r}."
                            + did_you_mean(name, self._paths)) from None

    def load(self, name: str) -> torch.Tensor:
        """Decode one image (RGB ``uint8 [3, H, W]``)."""
        return load_image(self.path(name))

    def lr_image(self, name: str, scale: int) -> torch.Tensor | None:
        """The dataset's own LR image, if it has one; generic datasets do not."""
        return None

    # -- identity --------------------------------------------------------------------

    def content_hash(self, name: str) -> str:
        """Full SHA-256 of an image file's bytes (per-image identity), cached."""
        digest = self._hashes.get(name)
        if digest is None:
            digest = self._hashes[name] = cached_sha256(self.path(name), persist=True)
        return digest

    def _identity_fields(self) -> dict[str, Any]:
        return {}

    @property
    def identity(self) -> str:
        """``dataset:<label>:<hash>`` over (name, file SHA-256) pairs + loader version."""
        if self._identity is None:
            files = [[n, self.content_hash(n)] for n in self.names]
            self._identity = make_identity(f"dataset:{self.label}", files=files,
                                           loader=LOADER_VERSION, **self._identity_fields())
        return self._identity

    def __repr__(self) -> str:
        count = len(self._names) if self._names is not None else len(self._candidates)
        return f"{type(self).__name__}(root={str(self.root)!r}, images={count})"


# -- scikit-image samples ------------------------------------------------------------

#: RGB photographs shipped inside the scikit-image wheel (``skimage/data``).
SAMPLE_PHOTOS = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "ihc": "ihc.png",
    "motorcycle_left": "motorcycle_left.png",
    "motorcycle_right": "motorcycle_right.png",
    "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
}
DEFAULT_SAMPLES = ("astronaut", "chelsea", "coffee", "ihc", "motorcycle_left",
                   "motorcycle_right", "rocket")


def skimage_data_dir() -> Path:
    """``skimage/data`` of the installed scikit-image, found without importing it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the 'samples' dataset needs scikit-image: pip install scikit-image")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class SamplesDataset(ImageFilesDataset):
    """Real photographs bundled with scikit-image: a real run with nothing downloaded.

    Default (7): astronaut (512x512), chelsea (451x300), coffee (600x400), ihc
    (512x512, microscopy), motorcycle_left / motorcycle_right (741x500, a stereo pair:
    near duplicates), rocket (640x427, stored as JPEG, so it carries JPEG artefacts).
    Also available by name: hubble_deep_field (1000x872, JPEG, ~70 % near-black) and
    retina (1411x1411, JPEG, dark surround). All RGB; the grayscale/RGBA/synthetic files
    of ``skimage/data`` are not offered. Files are read from the installed package (no
    ``skimage.data`` call, which could try to fetch); the identity hashes the files as
    shipped, so it changes only if a scikit-image release changes their bytes.
    """

    label = "samples"

    def __init__(self, names: Sequence[str] | None = None, limit: int | None = None,
                 skip_bad: bool = False, crop: int | None = None) -> None:
        if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int)
                                 or crop < 1):
            raise DataError(f"samples: crop must be a positive number of pixels, got {crop!r}")
        self.crop = crop
        chosen = list(DEFAULT_SAMPLES if names is None else names)
        if not chosen:
            raise DataError("samples: 'names' is empty")
        unknown = [n for n in chosen if n not in SAMPLE_PHOTOS]
        if unknown:
            raise DataError(f"samples: unknown photo {unknown[0]!r}."
                            + did_you_mean(str(unknown[0]), SAMPLE_PHOTOS))
        root = skimage_data_dir()
        files = [(n, root / SAMPLE_PHOTOS[n]) for n in chosen]
        missing = [str(p) for _, p in files if not p.is_file()]
        if missing:
            raise DataError(f"samples: the installed scikit-image does not ship {missing[0]} "
                            "(reinstall scikit-image >= 0.22)")
        super().__init__(files, limit=limit, skip_bad=skip_bad, root=root)

    def load(self, name: str) -> torch.Tensor:
        """The photo, or its centred ``crop`` x ``crop`` square (small, fast suites)."""
        image = super().load(name)
        if self.crop is None:
            return image
        height, width = image.shape[1:]
        if self.crop > min(height, width):
            raise DataError(f"samples: crop {self.crop} is larger than {name} "
                            f"({width}x{height}); use at most {min(height, width)}")
        top, left = (height - self.crop) // 2, (width - self.crop) // 2
        return image[:, top:top + self.crop, left:left + self.crop].clone()

    def content_hash(self, name: str) -> str:
        """The file's hash, combined with the crop when there is one."""
        file_hash = super().content_hash(name)
        return file_hash if self.crop is None else hashlib.sha256(
            f"{file_hash}:crop={self.crop}".encode()).hexdigest()

    def _identity_fields(self) -> dict[str, Any]:
        return {} if self.crop is None else {"crop": self.crop}


# -- folders -------------------------------------------------------------------------


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def list_images(root: Path, glob: str | None = None, recursive: bool = True
                ) -> list[tuple[str, Path]]:
    """Image files under ``root`` as sorted ``(name, path)`` pairs.

    Without ``glob``, files with a known image extension (case-insensitive); with it,
    exactly the matching files. Hidden files and folders (``.*``, e.g. macOS ``._x.jpg``)
    are skipped. Names are the relative POSIX path without the extension, or with it
    where two files would otherwise share a name (``a.png`` and ``a.jpg``). A file name
    that is not UTF-8 is named by its bytes with ``\\xNN`` escapes (a note says so); a
    symbolic link is followed, with a note when its target lies outside ``root``.
    """
    pattern = glob or "*"
    found = root.rglob(pattern) if recursive else root.glob(pattern)
    rels = sorted(p.relative_to(root) for p in found if p.is_file())
    rels = [r for r in rels if not _is_hidden(r)]
    if glob is None:
        rels = [r for r in rels if r.suffix.lower() in IMAGE_EXTENSIONS]
    _note_outside_links(root, rels)
    stems = [_safe_name(r.with_suffix("").as_posix(), root / r) for r in rels]
    clash = {s for s in stems if stems.count(s) > 1}
    return [(_safe_name(r.as_posix(), root / r) if s in clash else s, root / r)
            for r, s in zip(rels, stems)]


def _safe_name(name: str, path: Path) -> str:
    """``name`` as text that any store, report or terminal takes: bytes that are not
    UTF-8 (Python's surrogate escapes) become ``\\xNN``; the file itself is unchanged."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        safe = os.fsencode(name).decode("utf-8", "backslashreplace")
        shown = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
        warnings.warn(f"file name is not UTF-8: {shown}; its image is named {safe!r}",
                      DataWarning, stacklevel=4)
        return safe


def _note_outside_links(root: Path, rels: Sequence[Path]) -> None:
    """Links are followed (a dataset may be assembled from links), but one leading out of
    the dataset folder is noted: the image read is not where the folder suggests."""
    inside = root.resolve()
    for rel in rels:
        path = root / rel
        target = path.resolve()
        if target != path.absolute() and not target.is_relative_to(inside):
            shown = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
            warnings.warn(f"{shown} is a link to {target}, outside the dataset folder "
                          f"{root}; it is read from there", DataWarning, stacklevel=3)


class FolderDataset(ImageFilesDataset):
    """Every image under a directory (recursive, sorted): how users bring their data."""

    label = "folder"
    default_name: str | None = None
    how_to_get = "put your images there"

    def __init__(self, root: str | None = None, glob: str | None = None,
                 recursive: bool = True, skip_bad: bool = False,
                 limit: int | None = None) -> None:
        if root is None and self.default_name is None:
            raise DataError("folder dataset: 'root' is required (the directory of images)")
        path = resolve_root(root, self.default_name or "")
        if not path.is_dir():
            raise DataError(f"{self.label}: folder not found: {path}. {self.how_to_get}; "
                            + _where_hint())
        files = list_images(path, glob, recursive)
        if not files:
            what = f"matching {glob!r}" if glob else "with an image extension"
            raise DataError(f"{self.label}: no files {what} under {path}")
        self.glob, self.recursive = glob, recursive
        super().__init__(files, limit=limit, skip_bad=skip_bad, root=path)


class JPEGAIDataset(FolderDataset):
    """The JPEG AI test set, from a local folder only (it is distributed on request)."""

    label = "jpegai"
    default_name = "jpegai-test"
    how_to_get = ("The JPEG AI test set is distributed by the JPEG committee on request "
                  "(https://jpeg.org/jpegai/dataset.html); copy its images into that folder")


# -- Kodak ---------------------------------------------------------------------------

KODAK_NAMES = tuple(f"kodim{i:02d}" for i in range(1, 25))
KODAK_URL = "https://r0k.us/graphics/kodak/kodak/{name}.png"
#: SHA-256 of each Kodak PNG. Not pinned yet: nobody has verified them for this project,
#: and an unverified download is never accepted; until filled in, place the files.
KODAK_SHA256: dict[str, str] = {}


def _need_pinned(table: dict[str, str], keys: Sequence[str], what: str, manual: str) -> None:
    if any(not table.get(k) for k in keys):
        raise DataError(f"{what}: automatic download is not available: its SHA-256 checksums "
                        f"are not pinned in this version, and unverified downloads are never "
                        f"used. {manual}")


class KodakDataset(ImageFilesDataset):
    """The 24 Kodak images (kodim01..kodim24, 768x512 / 512x768) from ``<root>/*.png``."""

    label = "kodak"

    def __init__(self, root: str | None = None, download: bool = False,
                 skip_bad: bool = False, limit: int | None = None) -> None:
        path = resolve_root(root, "kodak")
        manual = (f"Download kodim01.png ... kodim24.png from https://r0k.us/graphics/kodak/ "
                  f"into {path}")
        missing = [n for n in KODAK_NAMES if not (path / f"{n}.png").is_file()]
        if missing and download:
            self._download(path, missing, manual)
            missing = [n for n in KODAK_NAMES if not (path / f"{n}.png").is_file()]
        if missing:
            state = "folder not found" if not path.is_dir() else (
                f"{len(missing)} of 24 files missing ({', '.join(missing[:3])}...)")
            raise DataError(f"kodak: {state}: {path}. {manual}; or " + _where_hint())
        files = [(n, path / f"{n}.png") for n in KODAK_NAMES]
        super().__init__(files, limit=limit, skip_bad=skip_bad, root=path)

    @staticmethod
    def _download(path: Path, names: Sequence[str], manual: str) -> None:
        _need_pinned(KODAK_SHA256, names, "kodak", manual)

        for name in names:
            weights.download(KODAK_URL.format(name=name), path / f"{name}.png",
                             KODAK_SHA256[name])


# -- DIV2K / DF2K --------------------------------------------------------------------

DIV2K_SPLITS = {"train": range(1, 801), "valid": range(801, 901)}
DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/{archive}"
#: SHA-256 of the official archives, as TensorFlow Datasets records them
#: (``tensorflow_datasets/url_checksums/div2k.txt``: 3,530,603,713 and 448,993,893
#: bytes). The ``X4`` LR archives are not pinned: without them, LR is generated.
DIV2K_SHA256: dict[str, str] = {
    "DIV2K_train_HR.zip": "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
    "DIV2K_valid_HR.zip": "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
}


def _missing_ids(folder: Path, names: Sequence[str], suffix: str = ".png") -> list[str]:
    if not folder.is_dir():
        return list(names)
    present = {p.name for p in folder.iterdir()}
    return [n for n in names if f"{n}{suffix}" not in present]


class DIV2KDataset(ImageFilesDataset):
    """DIV2K HR images in the official layout: ``<root>/DIV2K_<split>_HR/0801.png``.

    ``split``: ``train`` (0001-0800) or ``valid`` (0801-0900, the paper's 100 images).
    With ``official_lr``, :meth:`lr_image` serves
    ``<root>/DIV2K_<split>_LR_bicubic/X<s>/<id>x<s>.png`` when present (made with MATLAB
    bicubic); those files then enter the identity. ``download`` fetches the official
    ``DIV2K_<split>_HR.zip`` (SHA-256 pinned, verified) and unpacks it safely; the X4 LR
    archive is fetched too once its checksum is pinned.
    """

    label = "div2k"

    def __init__(self, root: str | None = None, split: str = "valid",
                 official_lr: bool = False, download: bool = False,
                 skip_bad: bool = False, limit: int | None = None) -> None:
        if split not in DIV2K_SPLITS:
            raise DataError(f"div2k: unknown split {split!r}." + did_you_mean(split, DIV2K_SPLITS))
        path = resolve_root(root, "DIV2K")
        self.split, self.official_lr = split, bool(official_lr)
        self.label = f"div2k-{split}"
        ids = [f"{i:04d}" for i in DIV2K_SPLITS[split]]
        hr_dir = path / f"DIV2K_{split}_HR"
        archives = [f"DIV2K_{split}_HR.zip"] + (
            [f"DIV2K_{split}_LR_bicubic_X4.zip"] if official_lr else [])
        manual = (f"Download {' and '.join(archives)} from "
                  f"https://data.vision.ee.ethz.ch/cvl/DIV2K/ and unzip into {path}")
        missing = _missing_ids(hr_dir, ids)
        if missing and download:
            pinned = [a for a in archives if a in DIV2K_SHA256]  # the HR archive at least
            _fetch_archives(pinned, DIV2K_SHA256, DIV2K_URL, path, "div2k", manual)
            missing = _missing_ids(hr_dir, ids)
        if missing:
            state = "folder not found" if not hr_dir.is_dir() else (
                f"{len(missing)} of {len(ids)} images missing ({', '.join(missing[:3])}...)")
            raise DataError(f"div2k {split}: {state}: {hr_dir} (expects {ids[0]}.png ... "
                            f"{ids[-1]}.png). {manual}; or " + _where_hint())
        super().__init__([(i, hr_dir / f"{i}.png") for i in ids], limit=limit,
                         skip_bad=skip_bad, root=path)
        if self.official_lr and not self.lr_path(ids[0], 4).is_file():
            warnings.warn(f"div2k: official_lr is on but {self.lr_path(ids[0], 4)} is missing; "
                          "LR images will be generated", DataWarning, stacklevel=2)

    def lr_path(self, name: str, scale: int) -> Path:
        """Where the official LR file for ``name`` at ``scale`` lives."""
        assert self.root is not None
        return (self.root / f"DIV2K_{self.split}_LR_bicubic" / f"X{scale}"
                / f"{name}x{scale}.png")

    def lr_image(self, name: str, scale: int) -> torch.Tensor | None:
        """The official bicubic LR image, when ``official_lr`` is on and the file exists."""
        if not self.official_lr:
            return None
        self.path(name)  # unknown names raise
        path = self.lr_path(name, scale)
        return load_image(path) if path.is_file() else None

    def _identity_fields(self) -> dict[str, Any]:
        if not self.official_lr:
            return {}
        lr: dict[str, str] = {}
        for name in self.names:
            for scale in (2, 3, 4):
                path = self.lr_path(name, scale)
                if path.is_file():
                    lr[f"{name}x{scale}"] = sha256_file(path)
        return {"official_lr": lr}


def _fetch_archives(archives: Sequence[str], table: dict[str, str], url: str, dest: Path,
                    what: str, manual: str) -> None:
    """Verified download of each archive into the cache, then a safe unpack into ``dest``."""
    _need_pinned(table, archives, what, manual)
    for archive in archives:
        local = cache_dir() / "downloads" / archive
        if not local.is_file() or not sha256_file(local).startswith(table[archive]):
            weights.download(url.format(archive=archive), local, table[archive])
        safe_extract(local, dest)


FLICKR2K_COUNT = 2650


class DF2KDataset(ImageFilesDataset):
    """DF2K for training: DIV2K train (800) + Flickr2K (2,650) = 3,450 HR images.

    ``root`` holds ``DIV2K/`` and ``Flickr2K/`` (default: the data root);
    ``div2k_root`` / ``flickr2k_root`` point at them separately. Flickr2K's HR images are
    ``<flickr2k_root>/Flickr2K_HR/000001.png`` ... ``002650.png`` (or directly in
    ``flickr2k_root``). Names: ``DIV2K/0001``, ``Flickr2K/000001``.
    """

    label = "df2k"

    def __init__(self, root: str | None = None, div2k_root: str | None = None,
                 flickr2k_root: str | None = None, skip_bad: bool = False,
                 limit: int | None = None) -> None:
        base = Path(root).expanduser() if root else data_root()
        div2k = Path(div2k_root).expanduser() if div2k_root else base / "DIV2K"
        train = DIV2KDataset(root=str(div2k), split="train")
        flickr = Path(flickr2k_root).expanduser() if flickr2k_root else base / "Flickr2K"
        hr = flickr / "Flickr2K_HR" if (flickr / "Flickr2K_HR").is_dir() else flickr
        ids = [f"{i:06d}" for i in range(1, FLICKR2K_COUNT + 1)]
        missing = _missing_ids(hr, ids)
        if missing:
            state = "folder not found" if not hr.is_dir() else (
                f"{len(missing)} of {len(ids)} images missing ({', '.join(missing[:3])}...)")
            raise DataError(f"df2k: Flickr2K {state}: {hr} (expects 000001.png ... "
                            f"002650.png). Download Flickr2K.tar from "
                            "https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar and unpack it "
                            f"into {flickr.parent}; or " + _where_hint())
        files = [(f"DIV2K/{n}", train.path(n)) for n in train.names]
        files += [(f"Flickr2K/{n}", hr / f"{n}.png") for n in ids]
        super().__init__(files, limit=limit, skip_bad=skip_bad, root=base)
