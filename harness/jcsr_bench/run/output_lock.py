"""One run at a time per output folder: an advisory ``fcntl.flock`` on ``DIR/.jcsr-bench.lock``.

Two runs writing one folder would both recompute everything and the last would
overwrite the other's leaderboard. The kernel drops a flock when its holder's process
ends, however it ends (``kill -9`` included), so a lock file left behind never blocks;
while held, the file names the holder (pid, host, start time, command) for the message.
A folder the lock created that holds nothing else when the block ends (a run that
stopped before any compute, e.g. on missing pieces) is removed again, lock file and
all: no ``jcsr-results/`` holding only a lock file is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.results.store import now_iso

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not serialised there (see docs/)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".jcsr-bench.lock"


class OutputBusy(JcsrError):
    """Another process is writing the same output folder."""


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}: "
                f"{info['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its details"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def output_lock(folder: Path, *, wait: bool = False,
                stream: TextIO | None = None) -> Iterator[Path]:
    """Hold the folder's lock for the block; busy: raise :class:`OutputBusy` naming the
    holder, or with ``wait`` say so on ``stream`` and block until it is released."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    if fcntl is None:
        yield path
        return
    fd = _acquire(folder, path, wait, stream)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": now_iso(),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv
                else "python"}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # a waiting run must not read this holder as its next one
            if created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:
                with contextlib.suppress(OSError):  # still held: a waiter sees the unlink
                    path.unlink()
                    folder.rmdir()
    finally:
        os.close(fd)  # releases the lock


def _acquire(folder: Path, path: Path, wait: bool, stream: TextIO | None) -> int:
    """An fd holding the flock of the lock file that is ``path`` *now* (a holder that
    removed its empty folder unlinked the file another run was waiting on: retry)."""
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                holder = _holder(fd)
                if not wait:
                    raise OutputBusy(
                        f"output folder {folder} is in use by another jcsr-bench run "
                        f"({holder}). Let it finish and run again (finished cells are "
                        "reused), add --wait to start as soon as it ends, or choose another "
                        "--output.")
                print(f"jcsr-bench: waiting for the run using {folder} to finish ({holder})",
                      file=stream or sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
