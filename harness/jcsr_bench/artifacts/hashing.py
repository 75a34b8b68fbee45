"""File content hashes (SHA-256), cached by (path, modification time, size).

Dataset identities hash every image file; DF2K is about 4 GB. The on-disk cache
(``cache_dir()/file-hashes.sqlite``) makes that a one-time cost across runs. Weight
verification uses the in-memory cache only, so every process checks files afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from pathlib import Path

from jcsr_bench.kit.paths import cache_dir

CHUNK = 1 << 20
_MEMORY: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Full hex SHA-256 of a file, streamed (weights and archives can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_sha256(path: str | os.PathLike[str], *, persist: bool = False) -> str:
    """``sha256_file`` cached per (resolved path, mtime, size); ``persist`` also keeps it
    across runs on disk (for identities, not for security checks)."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    digest = _MEMORY.get(key)
    if digest is None and persist:
        digest = _load(key)
    if digest is None:
        digest = sha256_file(p)
        if persist:
            _store(key, digest)
    _MEMORY[key] = digest
    return digest


def _connect() -> sqlite3.Connection:
    db = cache_dir() / "file-hashes.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db, timeout=30)
    con.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT, mtime_ns INTEGER, "
                "size INTEGER, sha256 TEXT, PRIMARY KEY (path, mtime_ns, size))")
    return con


def _load(key: tuple[str, int, int]) -> str | None:
    with contextlib.suppress(sqlite3.Error, OSError):  # a cache, never a failure
        con = _connect()
        try:
            row = con.execute("SELECT sha256 FROM hashes WHERE path=? AND mtime_ns=? AND "
                              "size=?", key).fetchone()
        finally:
            con.close()
        return row[0] if row else None
    return None


def _store(key: tuple[str, int, int], digest: str) -> None:
    with contextlib.suppress(sqlite3.Error, OSError):
        con = _connect()
        try:
            with con:
                con.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
                            (*key, digest))
        finally:
            con.close()
