"""Safe unpacking of dataset archives (zip, tar, tar.gz/bz2/xz).

Every member is checked **before** anything is written: an absolute path, a drive
letter, a ``..`` component, a link (symbolic or hard) pointing outside the destination,
or a device/FIFO member makes the whole archive refused with a :class:`DataError`
naming the archive and the member. Zip symlink entries are refused outright (Python
would write them as plain files holding the target, which is never what a dataset
means). Tar extraction additionally uses Python's ``data`` filter where available.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from jcsr_bench.kit.errors import DataError


def _check_name(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or DataError if it could land outside the destination."""
    if not name or "\x00" in name:
        raise DataError(f"{archive}: refusing member with an empty or NUL name")
    win = PureWindowsPath(name)
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or win.is_absolute() or win.drive or name.startswith(("/", "\\")):
        raise DataError(f"{archive}: refusing member with an absolute path: {name!r}")
    if ".." in posix.parts:
        raise DataError(f"{archive}: refusing member with '..' in its path: {name!r}")
    return posix


def _inside(dest: Path, target: Path) -> bool:
    dest = dest.resolve()
    target = target.resolve()
    return target == dest or dest in target.parents


def _check_tar(archive: Path, tf: tarfile.TarFile, dest: Path) -> None:
    for m in tf.getmembers():
        rel = _check_name(archive, m.name)
        if m.issym() or m.islnk():
            link = m.linkname
            if not link or PurePosixPath(link).is_absolute() or PureWindowsPath(link).drive:
                raise DataError(f"{archive}: refusing link {m.name!r} -> {link!r} (absolute)")
            base = dest / rel.parent if m.issym() else dest
            if not _inside(dest, base / link):
                raise DataError(f"{archive}: refusing link {m.name!r} -> {link!r} "
                                "(points outside the destination)")
        elif not (m.isfile() or m.isdir()):
            raise DataError(f"{archive}: refusing special member {m.name!r} (device or FIFO)")


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        _check_name(archive, info.filename)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise DataError(f"{archive}: refusing symbolic link member {info.filename!r}")


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Unpack a zip or tar archive into ``dest`` after checking every member; return ``dest``."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_zip(archive, zf)
            zf.extractall(dest)
        return dest
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 - closed below
    except tarfile.TarError:
        raise DataError(f"{archive}: not a zip or tar archive") from None
    with tf:
        _check_tar(archive, tf, dest)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:  # pragma: no cover - Python without the extraction filters
            tf.extractall(dest)  # noqa: S202 - every member was checked above
    return dest
