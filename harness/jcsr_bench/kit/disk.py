"""Disk trouble as one clear error: a full disk, a read-only folder, a file in the way.

Such trouble is the machine's, not a cell's: a run stops at the first one with a
message naming the folder (instead of recording every remaining cell as failed), and
what finished stays stored, so the next run resumes once the folder is usable again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jcsr_bench.kit.errors import StorageError

DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
PROBE_BYTES = 64 * 1024  # written and fsynced by probe_folder: a full disk fails here
# SQLite result codes (base code = extended code & 0xff) that mean the disk, not the data
_SQLITE_DISK = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY,
                sqlite3.SQLITE_CANTOPEN}


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, and SQLite's 'database or disk is full'."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or \
            "database or disk is full" in str(exc)
    return False


def _is_disk_trouble(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return is_disk_full(exc) or (code is not None and code & 0xFF in _SQLITE_DISK)
    return False


def _problem(exc: BaseException) -> tuple[str, str]:
    """(what is wrong, what to do about it) for a disk error."""
    if is_disk_full(exc):
        return "the disk is full (no space left on device)", "free space there"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"not writable ({exc.strerror})", "make it writable"
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            return "a file is in the way where a folder is needed", "move that file aside"
        return exc.strerror or str(exc), "fix that"
    return " ".join(str(exc).split()), "fix that"


def storage_error(exc: BaseException, what: str, folder: Path | str, remedy: str) -> StorageError:
    """One line: ``what folder: what is wrong; what to do, or remedy``."""
    problem, fix = _problem(exc)
    return StorageError(f"{what} {folder}: {problem}; {fix}, or {remedy}")


@contextlib.contextmanager
def writing(what: str, folder: Path, remedy: str) -> Iterator[None]:
    """Turn disk trouble (an OSError, or SQLite's full / I/O / read-only errors) inside
    the block into a :class:`StorageError` naming ``folder``; other errors pass."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if not _is_disk_trouble(exc):
            raise
        raise storage_error(exc, what, folder, remedy) from exc


def full_disk_error(exc: BaseException) -> StorageError | None:
    """The ``StorageError`` for a full disk met anywhere (naming the file's folder when
    the error names a file), or None when ``exc`` is something else."""
    if not is_disk_full(exc):
        return None
    remedy = "write elsewhere; what was already finished is kept and the next run resumes"
    if getattr(exc, "filename", None):
        return storage_error(exc, "writing to", Path(exc.filename).parent, remedy)
    return StorageError(f"the disk is full (no space left on device); free space, or {remedy}")


def stop_on_storage_error(exc: BaseException) -> None:
    """Re-raise ``exc`` when it is disk trouble rather than a cell's own failure.

    Called first where a run turns errors into failed cells (making an LR image, which
    writes the LR cache): a full disk stops the run (finished cells stay stored) instead
    of failing every remaining cell.
    """
    if isinstance(exc, StorageError):
        raise exc
    error = full_disk_error(exc)
    if error is not None:
        raise error from exc


def _nearest_existing(folder: Path) -> Path:
    return next((p for p in (folder, *folder.parents) if p.exists()), folder)


def check_folder_path(folder: Path, what: str, remedy: str) -> None:
    """``StorageError`` when ``folder`` (or the nearest existing folder above) is a file."""
    folder = Path(folder)
    existing = _nearest_existing(folder)
    if existing.exists() and not existing.is_dir():
        where = ("is an existing file" if existing == folder
                 else f"is inside {existing}, a file")
        raise StorageError(f"{what} {folder} {where}, not a folder: {remedy} (or move the "
                           "file aside)")


def probe_folder(folder: Path, what: str, remedy: str) -> None:
    """Write, fsync and remove a small file in ``folder`` (or, when it does not exist yet,
    in the nearest existing folder above, creating nothing).

    Catches a file in the way, a read-only folder or a full disk before any work is done.
    """
    folder = Path(folder)
    check_folder_path(folder, what, remedy)
    with writing(what, folder, remedy):
        fd, probe = tempfile.mkstemp(prefix=".jcsr-bench-probe-", dir=_nearest_existing(folder))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(b"\0" * PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
