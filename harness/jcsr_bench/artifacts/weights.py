"""Weight files: resolve, download, verify, and load them safely.

Every learned component goes through this module, so that no weight file is ever
fetched silently into an unknown place and none is trusted without a check:

- a *source* is a local path, or a URL with its SHA-256 (full, or the 8-hex prefix that
  CompressAI / BasicSR file names carry: ``name-<8hex>.ext``);
- downloads go to torch hub's checkpoint folder (files users already have are reused),
  through a temporary file that is verified before it is renamed into place;
- ``--offline`` / ``JCSR_BENCH_OFFLINE=1`` forbids the network: a missing file is an
  error naming the file, the folder to put it in, and the URL;
- checkpoints load with ``torch.load(..., weights_only=True)`` or safetensors: a
  checkpoint is data, never code.

torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from jcsr_bench.artifacts.hashing import CHUNK, cached_sha256
from jcsr_bench.artifacts.hashing import sha256_file as sha256_file  # part of this module's API
from jcsr_bench.kit import paths
from jcsr_bench.kit.atomic import atomic_write_with
from jcsr_bench.kit.errors import WeightsError

Source = Union[str, "os.PathLike[str]", Mapping[str, Any]]

_HEX_SUFFIX = re.compile(r"-([0-9a-fA-F]{8,64})(?:\.[A-Za-z0-9]+)+$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,64}$")
_SOURCE_KEYS = {"url", "sha256", "filename"}


# -- hashing ---------------------------------------------------------------------------


def file_identity(path: str | os.PathLike[str], length: int = 16) -> str:
    """Content hash (SHA-256 hex prefix) of a weight file, for component identities."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"weight file not found: {p}")
    return cached_sha256(p)[:length]


def content_identity(source: Source) -> str:
    """What a weight source holds, without loading it (cheap enough for plan time).

    A URL source is its pinned SHA-256 (every use verifies the file against it, so no
    file access is needed); a local file is its full SHA-256, cached across runs.
    """
    src = normalize_source(source)
    if "url" in src:
        return f"sha256:{src['sha256']}"
    path = src["path"]
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path} (check the path in the registry)")
    return f"sha256:{cached_sha256(path, persist=True)}"


# -- sources ---------------------------------------------------------------------------


def hash_from_filename(name: str) -> str | None:
    """The hash prefix a file name carries (``bmshj2018-hyperprior-1-7eb97409.pth.tar``)."""
    m = _HEX_SUFFIX.search(name)
    return m.group(1).lower() if m else None


def _url_filename(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise WeightsError(f"cannot take a file name from the URL {url!r}; give 'filename'")
    return name


def normalize_source(source: Source) -> dict[str, Any]:
    """A source as ``{"path": Path}`` or ``{"url", "sha256", "filename"}``; checks it."""
    if isinstance(source, Mapping):
        unknown = set(source) - _SOURCE_KEYS
        if unknown:
            raise WeightsError(
                f"unknown key(s) {sorted(unknown)} in weight source {dict(source)!r}; "
                f"a URL source has keys {sorted(_SOURCE_KEYS)}"
            )
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://")):
            raise WeightsError(f"weight source {dict(source)!r} needs a 'url' (http/https)")
        filename = source.get("filename") or _url_filename(url)
        if "/" in filename or "\\" in filename or filename in {".", ".."}:
            raise WeightsError(f"weight source 'filename' must be a plain file name: {filename!r}")
        sha = source.get("sha256") or hash_from_filename(filename)
        if not sha:
            raise WeightsError(
                f"weight source {url} has no SHA-256: add 'sha256' (full hex or its first 8 "
                "hex digits); jcsr-bench never uses an unverified download"
            )
        sha = str(sha).strip().lower()
        if not _HEX.match(sha):
            raise WeightsError(
                f"'sha256' of {url} must be 8 to 64 hex digits, got {source.get('sha256')!r}"
            )
        return {"url": url, "sha256": sha, "filename": filename}
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(("http://", "https://")):
            return normalize_source({"url": text})
        return {"path": Path(text).expanduser().absolute()}
    raise WeightsError(
        f"a weight source is a path or {{url, sha256}}, got {type(source).__name__}: {source!r}"
    )


def _check_hash(path: Path, expected: str, origin: str) -> None:
    actual = cached_sha256(path)
    if not actual.startswith(expected):
        raise WeightsError(
            f"hash mismatch for {path}: expected SHA-256 {expected}..., got {actual}. "
            f"The file is corrupt or not the one published at {origin}; delete it to let "
            "jcsr-bench download it again, or put the right file there."
        )


def cached_path(source: Source) -> Path:
    """Where a source lives locally (whether or not the file is there yet)."""
    src = normalize_source(source)
    if "path" in src:
        return src["path"]
    return paths.torch_hub_checkpoints() / src["filename"]


def missing_remedy(source: Source) -> str | None:
    """None if the source's file is present locally; else what the user must do."""
    src = normalize_source(source)
    if "path" in src:
        if src["path"].is_file():
            return None
        return f"weight file not found: {src['path']} (check the path in the registry)"
    dest = paths.torch_hub_checkpoints() / src["filename"]
    if dest.is_file():
        return None
    how = ("or run without --offline / JCSR_BENCH_OFFLINE to let jcsr-bench download and "
           "verify it" if paths.offline() else "or let a run download and verify it")
    return (
        f"weight file {src['filename']} is not in {dest.parent}: download it from "
        f"{src['url']} into that folder ({how})"
    )


def resolve(source: Source, *, progress: bool = True) -> Path:
    """The local, verified file of a weight source, downloading it if allowed.

    Local paths must exist (no hash is implied). URL sources are looked up in torch
    hub's checkpoint folder first, verified against their SHA-256 (prefix), and
    downloaded there when missing unless offline.
    """
    src = normalize_source(source)
    if "path" in src:
        p = src["path"]
        if not p.is_file():
            raise WeightsError(
                f"weight file not found: {p}"
                + (" (it is a folder, not a file)" if p.is_dir() else "")
                + ". Check the path in the registry (relative paths are taken from the "
                "current directory)."
            )
        return p
    dest = paths.torch_hub_checkpoints() / src["filename"]
    if dest.is_file():
        _check_hash(dest, src["sha256"], src["url"])
        return dest
    if paths.offline():
        raise WeightsError(
            f"weight file {src['filename']} is missing and network access is off "
            f"(--offline / JCSR_BENCH_OFFLINE=1). Put the file in {dest.parent} "
            f"(download it from {src['url']}), or run without --offline."
        )
    return download(src["url"], dest, src["sha256"], progress=progress)


# -- download --------------------------------------------------------------------------


def download(
    url: str, dest: str | os.PathLike[str], sha256: str | None, progress: bool = True
) -> Path:
    """Download ``url`` to ``dest`` atomically (temp file + rename), verified first.

    ``sha256`` is a full hex digest or a prefix (8+ hex); None accepts any content
    (only for callers that verify otherwise). A mismatching download is deleted and
    reported with both hashes.
    """
    dest = Path(dest)
    if paths.offline():
        raise WeightsError(
            f"refusing to download {url}: network access is off (--offline / "
            f"JCSR_BENCH_OFFLINE=1). Put {dest.name} in {dest.parent} yourself."
        )
    expected = sha256.lower() if sha256 else None

    def fetch(out: Any) -> None:  # raising here discards the temporary file
        h = hashlib.sha256()
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "jcsr-bench"})
            with urllib.request.urlopen(request, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                bar = _progress_bar(total, dest.name, progress)
                try:
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
                finally:
                    bar.close()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise WeightsError(
                f"could not download {url}: {exc}. Download it yourself into "
                f"{dest.parent} (file name {dest.name}), or check your connection."
            ) from exc
        actual = h.hexdigest()
        if expected and not actual.startswith(expected):
            raise WeightsError(
                f"hash mismatch for the download of {url}: expected SHA-256 {expected}..., "
                f"got {actual}. The file was discarded."
            )

    atomic_write_with(dest, fetch)
    return dest


def _progress_bar(total: int | None, name: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not enabled
    )


# -- loading ---------------------------------------------------------------------------


def _is_safetensors(path: Path) -> bool:
    """Sniff the safetensors layout: 8-byte little-endian header size, then JSON."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < size <= path.stat().st_size - 8


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint as data: ``torch.load(weights_only=True)`` or safetensors, on CPU.

    A checkpoint that needs pickled Python code is refused with a message saying how
    to re-save it as plain tensors; a file that is no checkpoint at all is refused naming
    it and what was expected; a checkpoint holding NaN or infinite values is refused
    (naming the tensor) before any compute, since it would score a black image as real.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"weight file not found: {p}")
    if p.suffix == ".safetensors" or _is_safetensors(p):
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise WeightsError(
                f"{p} is a safetensors file; install it with `pip install safetensors`"
            ) from exc
        try:
            tensors = dict(load_file(str(p), device="cpu"))
        except Exception as exc:
            raise WeightsError(f"cannot read safetensors checkpoint {p}: {exc}") from exc
        _check_finite(tensors, p)
        return tensors

    import pickle

    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if not found:
            raise WeightsError(f"cannot read checkpoint {p} (corrupt or not a checkpoint)") from exc
        raise WeightsError(
            f"refusing to load {p}: it contains pickled Python objects ({found.group(1)}), "
            "i.e. code, and jcsr-bench loads checkpoints as data only (torch.load "
            "weights_only=True). Re-save it from a trusted environment as plain tensors, "
            "e.g. torch.save(model.state_dict(), path), or convert it to safetensors."
        ) from exc
    except Exception as exc:  # the unpickler raises anything on a file that is not one
        raise WeightsError(
            f"cannot read checkpoint {p} (truncated or not a checkpoint; expected a PyTorch "
            f"file of tensors saved by torch.save, or safetensors): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"checkpoint {p} holds a {type(obj).__name__}, expected a dict of tensors"
        )
    _check_finite(obj, p)
    return dict(obj)


def _check_finite(obj: Any, path: Path, key: str = "") -> None:
    """Refuse a checkpoint with a NaN or infinite floating-point value, naming the tensor."""
    import torch

    if isinstance(obj, torch.Tensor):
        floating = obj.is_floating_point() or obj.is_complex()
        if floating and not bool(torch.isfinite(obj).all()):
            raise WeightsError(
                f"checkpoint {path}: tensor {key or '(top level)'!r} holds NaN or "
                "infinite values (a diverged or corrupted training run?); refusing it "
                "before it scores a broken image as a result. Use an earlier checkpoint."
            )
    elif isinstance(obj, Mapping):
        for name, value in obj.items():
            _check_finite(value, path, f"{key}.{name}" if key else str(name))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            _check_finite(value, path, f"{key}[{index}]")


def unwrap_state_dict(
    checkpoint: Mapping[str, Any],
    keys: tuple[str, ...] = ("state_dict", "network", "model_state_dict", "params_ema", "params"),
) -> dict[str, Any]:
    """The state dict inside common training wrappers (first key of ``keys`` present).

    Also strips the ``module.`` prefix that DataParallel adds.
    """
    state: Any = checkpoint
    for key in keys:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state
