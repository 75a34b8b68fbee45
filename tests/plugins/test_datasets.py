"""Built-in datasets: samples, folders, Kodak, DIV2K, DF2K, JPEG AI (tiny stand-in files)."""

from __future__ import annotations

import hashlib
import inspect
import io
import shutil
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.artifacts import weights
from jcsr_bench.imaging.lr import lr_for
from jcsr_bench.kit.errors import DataError, WeightsError
from jcsr_bench_plugins import datasets as builtin_datasets
from jcsr_bench_plugins.datasets import sources as ds


def _png(h: int = 8, w: int = 12, seed: int = 0) -> bytes:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.delenv(ds.DATA_ROOT_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/datasets is empty
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))


# -- samples -------------------------------------------------------------------------


def test_samples_offline_rgb_photographs(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the samples dataset must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setenv("JCSR_BENCH_OFFLINE", "1")
    data = ds.SamplesDataset()
    assert len(data) >= 6 and data.names[:3] == ["astronaut", "chelsea", "coffee"]
    for name, image in data:
        assert image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] == 3
        assert min(image.shape[1:]) >= 256, name
        assert not torch.equal(image[0], image[1]), f"{name} is not a colour photograph"


def test_samples_identity_hashes_files_without_decoding(monkeypatch, tmp_path):
    monkeypatch.setattr(ds, "load_image", lambda path: pytest.fail("identity decoded images"))
    a, b = ds.SamplesDataset(), ds.SamplesDataset()
    assert a.identity == b.identity and a.identity.startswith("dataset:samples:")
    assert ds.SamplesDataset(limit=3).identity != a.identity
    assert ds.SamplesDataset(names=["coffee", "astronaut"]).identity != a.identity
    # a content hash: the same files elsewhere give the same hash, whatever the path
    root = ds.skimage_data_dir()
    for name in a.names:
        src = root / ds.SAMPLE_PHOTOS[name]
        shutil.copy(src, tmp_path / f"{name}{src.suffix}")
    folder = ds.FolderDataset(root=str(tmp_path))
    assert sorted(folder.names) == sorted(a.names)
    reordered = ds.SamplesDataset(names=folder.names)
    assert folder.identity.split(":")[-1] == reordered.identity.split(":")[-1]
    expected = hashlib.sha256((root / "astronaut.png").read_bytes()).hexdigest()
    assert a.content_hash("astronaut") == expected


def test_samples_names_and_errors():
    assert ds.SamplesDataset(names=["retina"]).names == ["retina"]
    with pytest.raises(DataError, match="Did you mean 'chelsea'"):
        ds.SamplesDataset(names=["chelsey"])
    with pytest.raises(DataError, match="limit"):
        ds.SamplesDataset(limit=0)
    with pytest.raises(DataError, match="no image named"):
        ds.SamplesDataset().load("nope")


# -- folders and bad files -----------------------------------------------------------


def test_folder_recursive_sorted_filtered(tmp_path):
    root = tmp_path / "pics"
    for rel in ["b.png", "a.JPG", "sub/c.png", "sub/deeper/d.webp", ".hidden.png",
                ".cache/e.png", "notes.txt", "x.png", "x.jpg"]:
        data = _png() if rel.lower().endswith((".png", ".jpg")) else b"text"
        if rel.endswith(".webp"):
            buf = io.BytesIO()
            Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="WEBP", lossless=True)
            data = buf.getvalue()
        _write(root / rel, data)
    data = ds.FolderDataset(root=str(root))
    assert data.names == ["a", "b", "sub/c", "sub/deeper/d", "x.jpg", "x.png"]
    assert ds.FolderDataset(root=str(root), recursive=False).names == ["a", "b", "x.jpg",
                                                                       "x.png"]
    assert ds.FolderDataset(root=str(root), glob="*.png").names == ["b", "sub/c", "x"]
    assert ds.FolderDataset(root=str(root), limit=2).names == ["a", "b"]
    assert [n for n, _ in ds.FolderDataset(root=str(root), limit=2)] == ["a", "b"]


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="root"):
        ds.FolderDataset()
    with pytest.raises(DataError, match=f"folder not found: {tmp_path / 'none'}"):
        ds.FolderDataset(root=str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files"):
        ds.FolderDataset(root=str(tmp_path / "empty"))


def _bad_folder(tmp_path) -> Path:
    root = tmp_path / "mixed"
    _write(root / "1.png", _png(seed=1))
    _write(root / "2.png", _png(64, 64, seed=2)[:200])  # truncated
    _write(root / "3.png", b"not an image at all")
    _write(root / "4.png", _png(seed=4))
    return root


def test_bad_file_stops_by_default(tmp_path):
    data = ds.FolderDataset(root=str(_bad_folder(tmp_path)))
    assert len(data) == 4
    with pytest.raises(DataError, match="2.png"):
        list(data)


def test_skip_bad_warns_and_stays_consistent(tmp_path):
    root = _bad_folder(tmp_path)
    with pytest.warns(ds.DataWarning, match="skip") as record:
        data = ds.FolderDataset(root=str(root), skip_bad=True)
        assert data.names == ["1", "4"]
    assert any("2.png" in str(w.message) for w in record)
    assert any("3.png" in str(w.message) for w in record)
    assert len(data) == 2 and [n for n, _ in data] == ["1", "4"]
    (root / "2.png").unlink()
    (root / "3.png").unlink()
    assert data.identity == ds.FolderDataset(root=str(root)).identity
    with pytest.warns(ds.DataWarning):
        assert ds.FolderDataset(root=str(_bad_folder(tmp_path / "x")), skip_bad=True,
                                limit=2).names == ["1", "4"]


# -- roots ---------------------------------------------------------------------------


def _div2k(root: Path, split: str = "valid", lr: bool = True) -> Path:
    ids = range(801, 901) if split == "valid" else range(1, 801)
    hr_bytes = _png(8, 12, seed=0)
    lr_bytes = _png(2, 3, seed=1)
    for i in ids:
        _write(root / f"DIV2K_{split}_HR" / f"{i:04d}.png", hr_bytes)
        if lr:
            _write(root / f"DIV2K_{split}_LR_bicubic" / "X4" / f"{i:04d}x4.png", lr_bytes)
    return root


def test_div2k_valid_layout_ids_and_official_lr(tmp_path):
    root = _div2k(tmp_path / "DIV2K")
    data = ds.DIV2KDataset(root=str(root), split="valid", official_lr=True)
    assert data.names == [f"{i:04d}" for i in range(801, 901)]
    assert len(data) == 100
    pairs = list(data)
    assert [n for n, _ in pairs] == data.names
    name, hr = pairs[0]
    lr = data.lr_image(name, 4)
    assert tuple(hr.shape) == (3, 8, 12) and tuple(lr.shape) == (3, 2, 3)
    expected = np.asarray(Image.open(root / "DIV2K_valid_LR_bicubic/X4/0801x4.png"))
    np.testing.assert_array_equal(lr.permute(1, 2, 0).numpy(), expected)
    assert torch.equal(lr_for(hr, 4, dataset=data, name=name), lr)
    assert data.lr_image(name, 2) is None  # no X2 folder: generated instead
    off = ds.DIV2KDataset(root=str(root), split="valid")
    assert off.lr_image(name, 4) is None
    assert off.identity != data.identity  # official LR files enter the identity
    _write(root / "DIV2K_valid_LR_bicubic" / "X4" / "0805x4.png", _png(2, 3, seed=9))
    changed = ds.DIV2KDataset(root=str(root), split="valid", official_lr=True)
    assert changed.identity != data.identity
    assert ds.DIV2KDataset(root=str(root), limit=5).names[-1] == "0805"


def test_div2k_missing_gives_folder_and_source(tmp_path):
    root = tmp_path / "DIV2K"
    with pytest.raises(DataError) as err:
        ds.DIV2KDataset(root=str(root), split="valid")
    msg = str(err.value)
    assert str(root / "DIV2K_valid_HR") in msg and "DIV2K_valid_HR.zip" in msg
    assert "data.vision.ee.ethz.ch" in msg and "--data-root" in msg
    _div2k(root, lr=False)
    (root / "DIV2K_valid_HR" / "0850.png").unlink()
    with pytest.raises(DataError, match="1 of 100 images missing \\(0850"):
        ds.DIV2KDataset(root=str(root))
    with pytest.raises(DataError, match="Did you mean 'valid'"):
        ds.DIV2KDataset(root=str(root), split="vaild")


def test_official_lr_absent_warns(tmp_path):
    root = _div2k(tmp_path / "DIV2K", lr=False)
    with pytest.warns(ds.DataWarning, match="official_lr"):
        data = ds.DIV2KDataset(root=str(root), official_lr=True)
    assert data.lr_image("0801", 4) is None


def test_data_root_env_and_explicit_root(tmp_path, monkeypatch):
    _div2k(tmp_path / "data" / "DIV2K", lr=False)
    monkeypatch.setenv(ds.DATA_ROOT_ENV, str(tmp_path / "data"))
    assert ds.DIV2KDataset().root == tmp_path / "data" / "DIV2K"
    with pytest.raises(DataError, match=str(tmp_path / "elsewhere")):
        ds.DIV2KDataset(root=str(tmp_path / "elsewhere"))  # explicit root wins
    monkeypatch.delenv(ds.DATA_ROOT_ENV)
    with pytest.raises(DataError, match=str(tmp_path / "home" / "datasets" / "DIV2K")):
        ds.DIV2KDataset()


def _fake_download(sources: dict[str, Path], calls: list):
    def download(url, dest, sha256, progress=True):
        calls.append((url, Path(dest), sha256))
        data = sources[url].read_bytes()
        assert hashlib.sha256(data).hexdigest().startswith(sha256)
        _write(Path(dest), data)
        return Path(dest)

    return download


def test_div2k_download_verified_and_safely_unpacked(tmp_path, monkeypatch):
    staged = _div2k(tmp_path / "staged", lr=False)
    archive = tmp_path / "DIV2K_valid_HR.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted((staged / "DIV2K_valid_HR").iterdir()):
            zf.write(p, f"DIV2K_valid_HR/{p.name}")
    root = tmp_path / "DIV2K"
    # the real archive's hash is pinned; offline (as every test) the download is refused
    with pytest.raises(WeightsError, match="refusing to download.*DIV2K_valid_HR.zip"):
        ds.DIV2KDataset(root=str(root), download=True)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(ds, "DIV2K_SHA256", {"DIV2K_valid_HR.zip": sha})
    calls: list = []
    url = ds.DIV2K_URL.format(archive="DIV2K_valid_HR.zip")
    monkeypatch.setattr(weights, "download", _fake_download({url: archive}, calls))
    data = ds.DIV2KDataset(root=str(root), download=True)
    assert len(data) == 100 and calls == [(url, calls[0][1], sha)]
    assert calls[0][1].name == "DIV2K_valid_HR.zip"
    # an archive with a traversal member is refused even with the right hash
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.png", b"x")
    monkeypatch.setattr(ds, "DIV2K_SHA256",
                        {"DIV2K_valid_HR.zip": hashlib.sha256(archive.read_bytes()).hexdigest()})
    with pytest.raises(DataError, match="refusing"):
        ds.DIV2KDataset(root=str(tmp_path / "other"), download=True)


# -- Kodak, DF2K, JPEG AI ------------------------------------------------------------


def test_kodak_local_missing_and_download(tmp_path, monkeypatch):
    root = tmp_path / "kodak"
    with pytest.raises(DataError, match=f"folder not found: {root}.*r0k.us"):
        ds.KodakDataset(root=str(root))
    with pytest.raises(DataError, match="not pinned"):
        ds.KodakDataset(root=str(root), download=True)
    sources, table = {}, {}
    for i, name in enumerate(ds.KODAK_NAMES):
        src = _write(tmp_path / "src" / f"{name}.png", _png(seed=i))
        sources[ds.KODAK_URL.format(name=name)] = src
        table[name] = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setattr(ds, "KODAK_SHA256", table)
    calls: list = []
    monkeypatch.setattr(weights, "download", _fake_download(sources, calls))
    data = ds.KodakDataset(root=str(root), download=True)
    assert data.names == [f"kodim{i:02d}" for i in range(1, 25)] and len(calls) == 24
    (root / "kodim07.png").unlink()
    with pytest.raises(DataError, match="1 of 24 files missing \\(kodim07"):
        ds.KodakDataset(root=str(root))


def test_df2k_combines_div2k_train_and_flickr2k(tmp_path):
    base = tmp_path / "data"
    _div2k(base / "DIV2K", split="train", lr=False)
    png = _png(4, 4)
    for i in range(1, ds.FLICKR2K_COUNT + 1):
        _write(base / "Flickr2K" / "Flickr2K_HR" / f"{i:06d}.png", png)
    data = ds.DF2KDataset(root=str(base))
    assert len(data) == 3450
    assert data.names[0] == "DIV2K/0001" and data.names[799] == "DIV2K/0800"
    assert data.names[800] == "Flickr2K/000001" and data.names[-1] == "Flickr2K/002650"
    assert ds.DF2KDataset(div2k_root=str(base / "DIV2K"),
                          flickr2k_root=str(base / "Flickr2K" / "Flickr2K_HR"),
                          limit=3).names == ["DIV2K/0001", "DIV2K/0002", "DIV2K/0003"]
    shutil.rmtree(base / "Flickr2K")
    with pytest.raises(DataError, match="Flickr2K folder not found.*Flickr2K.tar"):
        ds.DF2KDataset(root=str(base))


def test_jpegai_local_only(tmp_path, monkeypatch):
    monkeypatch.setenv(ds.DATA_ROOT_ENV, str(tmp_path))
    with pytest.raises(DataError, match="jpegai-test.*jpeg.org"):
        ds.JPEGAIDataset()
    _write(tmp_path / "jpegai-test" / "00001_TE_8x12.png", _png())
    data = ds.JPEGAIDataset()
    assert data.names == ["00001_TE_8x12"] and data.identity.startswith("dataset:jpegai:")


# -- registration --------------------------------------------------------------------


def test_registered_params_match_constructors():
    registered = {}

    def register(name, factory, description="", params=None):
        registered[name] = (factory, params)

    builtin_datasets.register_datasets(register)
    assert set(registered) == {"samples", "folder", "kodak", "div2k", "df2k", "jpegai"}
    for name, (factory, params) in registered.items():
        module, _, attr = factory.target.partition(":")
        cls = getattr(ds, attr)
        accepted = set(inspect.signature(cls).parameters)
        assert set(params) == accepted, name
        assert {"limit", "skip_bad"} <= set(params), name
    samples = registered["samples"][0](limit=2)
    assert len(samples) == 2


def test_content_hashes_persist_across_processes(tmp_path):
    """Dataset identities hash every file once; later runs read the on-disk cache."""
    from jcsr_bench.artifacts import hashing

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "a.png")
    first = ds.FolderDataset(root=str(folder)).identity
    hashing._MEMORY.clear()  # a new process: only the disk cache is left
    calls = []
    real = hashing.sha256_file
    hashing.sha256_file = lambda p: calls.append(p) or real(p)
    try:
        assert ds.FolderDataset(root=str(folder)).identity == first
        assert calls == []
        Image.new("RGB", (9, 8), (99, 20, 30)).save(folder / "a.png")  # content changes
        assert ds.FolderDataset(root=str(folder)).identity != first
        assert len(calls) == 1
    finally:
        hashing.sha256_file = real


def test_samples_crop_is_centred_and_part_of_the_identity():
    from jcsr_bench_plugins.datasets.sources import SamplesDataset

    whole, cropped = SamplesDataset(names=["chelsea"]), SamplesDataset(names=["chelsea"],
                                                                       crop=100)
    full, part = whole.load("chelsea"), cropped.load("chelsea")
    height, width = full.shape[1:]
    top, left = (height - 100) // 2, (width - 100) // 2
    assert part.shape == (3, 100, 100)
    assert torch.equal(part, full[:, top:top + 100, left:left + 100])
    assert cropped.identity != whole.identity
    assert cropped.content_hash("chelsea") != whole.content_hash("chelsea")
    assert SamplesDataset(names=["chelsea"], crop=100).identity == cropped.identity
    with pytest.raises(DataError, match=r"crop 400 is larger than chelsea \(451x300\); "
                                        r"use at most 300"):
        SamplesDataset(names=["chelsea"], crop=400).load("chelsea")
    with pytest.raises(DataError, match="crop must be a positive number of pixels, got 0"):
        SamplesDataset(crop=0)


def test_non_utf8_file_name_is_named_safely_and_noted(tmp_path):
    import os

    root = tmp_path / "pics"
    _write(root / "ok.png", _png())
    _write(root / os.fsdecode(b"caf\xe9.png"), _png(seed=1))  # Latin-1 bytes on disk
    with pytest.warns(ds.DataWarning, match=r"file name is not UTF-8: .*caf\\xe9\.png; its "
                                            r"image is named 'caf\\\\xe9'"):
        data = ds.FolderDataset(root=str(root))
    assert data.names == ["caf\\xe9", "ok"]
    assert all(name.encode("utf-8") for name in data.names)  # storable anywhere
    assert data.identity.startswith("dataset:folder:")  # hashed: was UnicodeEncodeError
    assert data.load("caf\\xe9").shape == (3, 8, 12)


def test_non_utf8_bad_file_is_named_and_skipped_with_skip_bad(tmp_path):
    import os

    root = tmp_path / "pics"
    _write(root / "ok.png", _png())
    _write(root / os.fsdecode(b"bad\xff.png"), b"not an image")
    with pytest.warns(ds.DataWarning) as caught:
        data = ds.FolderDataset(root=str(root), skip_bad=True)
        assert data.names == ["ok"]
    assert any("skipping a bad image" in str(w.message) and "bad" in str(w.message)
               for w in caught)


def test_symlink_out_of_the_folder_is_read_with_a_note(tmp_path):
    outside = _write(tmp_path / "elsewhere" / "real.png", _png())
    root = tmp_path / "pics"
    _write(root / "a.png", _png())
    (root / "inner.png").symlink_to(root / "a.png")  # inside: no note
    (root / "link.png").symlink_to(outside)
    with pytest.warns(ds.DataWarning, match=r"link.png is a link to .*elsewhere/real.png, "
                                            r"outside the dataset folder") as caught:
        data = ds.FolderDataset(root=str(root))
    assert len(caught) == 1 and data.names == ["a", "inner", "link"]
