"""Safe archive extraction: traversal, absolute paths and links out are refused."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from jcsr_bench.artifacts.archives import safe_extract
from jcsr_bench.kit.errors import DataError


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, members: list[tarfile.TarInfo], mode: str = "w:gz"):
    with tarfile.open(path, mode) as tf:
        for info in members:
            data = b"x" * info.size if info.isfile() else None
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, size: int = 3) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_zip_extracts(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"DIV2K_valid_HR/0801.png": b"abc", "top.txt": b"t"})
    dest = safe_extract(archive, tmp_path / "out")
    assert (dest / "DIV2K_valid_HR" / "0801.png").read_bytes() == b"abc"
    assert (dest / "top.txt").read_bytes() == b"t"


@pytest.mark.parametrize("bad", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt",
                                 "C:/evil.txt", "..\\evil.txt"])
def test_zip_traversal_and_absolute_refused(tmp_path, bad):
    archive = _zip(tmp_path / "bad.zip", {"fine.txt": b"f", bad: b"evil"})
    with pytest.raises(DataError, match="bad.zip.*refusing"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "fine.txt").exists()  # nothing written at all
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")


def test_tar_extracts_with_internal_link(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [_file("d/a.png"), _link("d/b.png", "a.png")])
    dest = safe_extract(archive, tmp_path / "out")
    assert (dest / "d" / "a.png").read_bytes() == b"xxx"
    assert (dest / "d" / "b.png").resolve() == (dest / "d" / "a.png").resolve()


@pytest.mark.parametrize("member", [
    _file("../evil.txt"),
    _file("/tmp/evil.txt"),
    _link("d/out", "../../evil"),
    _link("d/abs", "/etc/passwd"),
    _link("d/hard", "../evil", kind=tarfile.LNKTYPE),
])
def test_tar_escapes_refused(tmp_path, member):
    archive = _tar(tmp_path / "bad.tar", [_file("fine.txt"), member], mode="w")
    with pytest.raises(DataError, match="bad.tar.*refusing"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "fine.txt").exists()


def test_tar_device_refused(tmp_path):
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    archive = _tar(tmp_path / "dev.tar", [dev], mode="w")
    with pytest.raises(DataError, match="special member"):
        safe_extract(archive, tmp_path / "out")


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"plain text")
    with pytest.raises(DataError, match="not a zip or tar"):
        safe_extract(tmp_path / "x.zip", tmp_path / "out")
    with pytest.raises(DataError, match="not found"):
        safe_extract(tmp_path / "missing.zip", tmp_path / "out")
