"""File content hashes (SHA-256), cached by (path, size, mtime, ctime, inode).

Dataset identities hash every image file; DF2K is about 4 GB. The on-disk cache
(``cache_dir()/file-hashes.sqlite``) makes that a one-time cost across runs. Weight
verification uses the in-memory cache only, so every process checks files afresh.

The rule: a cached hash is reused only while the file's size, modification time, status
change time (ctime) and inode are all unchanged. A modification time can be kept by hand
(``cp -p``, ``touch -r``, an editor that restores it), so it alone would let a replaced
file keep its old hash; the ctime is set by the kernel on every write, rename onto the
path or metadata change and cannot be set back, so such a replacement is rehashed.
Paths are stored as bytes, so file names that are not UTF-8 are cached too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from pathlib import Path

from jcsr_bench.kit.paths import cache_dir

CHUNK = 1 << 20
Key = tuple[bytes, int, int, int, int]
_MEMORY: dict[Key, str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Full hex SHA-256 of a file, streamed (weights and archives can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_sha256(path: str | os.PathLike[str], *, persist: bool = False) -> str:
    """``sha256_file`` cached per (resolved path, size, mtime, ctime, inode); ``persist``
    also keeps it across runs on disk (for identities, not for security checks)."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    key = (os.fsencode(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
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
    con.execute("CREATE TABLE IF NOT EXISTS file_hashes (path BLOB, size INTEGER, "
                "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, sha256 TEXT, "
                "PRIMARY KEY (path, size, mtime_ns, ctime_ns, inode))")
    return con


def _load(key: Key) -> str | None:
    with contextlib.suppress(sqlite3.Error, OSError):  # a cache, never a failure
        con = _connect()
        try:
            row = con.execute("SELECT sha256 FROM file_hashes WHERE path=? AND size=? AND "
                              "mtime_ns=? AND ctime_ns=? AND inode=?", key).fetchone()
        finally:
            con.close()
        return row[0] if row else None
    return None


def _store(key: Key, digest: str) -> None:
    with contextlib.suppress(sqlite3.Error, OSError):
        con = _connect()
        try:
            with con:
                con.execute("DELETE FROM file_hashes WHERE path = ?", key[:1])
                con.execute("INSERT INTO file_hashes VALUES (?, ?, ?, ?, ?, ?)",
                            (*key, digest))
        finally:
            con.close()
