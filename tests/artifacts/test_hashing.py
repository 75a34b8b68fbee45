"""File hashes cached by what a replaced file cannot keep (issue 26.9)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from jcsr_bench.artifacts import hashing


@pytest.mark.parametrize("how", ["overwrite", "rename"])
def test_same_size_same_mtime_replacement_is_rehashed(tmp_path, how):
    f = tmp_path / "astronaut.png"
    f.write_bytes(b"A" * 64)
    first = hashing.cached_sha256(f, persist=True)
    stat = f.stat()
    time.sleep(0.03)  # past the filesystem's timestamp granularity
    if how == "overwrite":
        f.write_bytes(b"B" * 64)
    else:
        (tmp_path / "new.png").write_bytes(b"B" * 64)
        os.replace(tmp_path / "new.png", f)
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the mtime kept, as cp -p does
    assert f.stat().st_size == stat.st_size and f.stat().st_mtime_ns == stat.st_mtime_ns
    expected = hashlib.sha256(b"B" * 64).hexdigest()
    assert hashing.cached_sha256(f, persist=True) == expected != first
    hashing._MEMORY.clear()  # a new process: the disk cache must not serve the old hash
    assert hashing.cached_sha256(f, persist=True) == expected


def test_unchanged_file_is_served_from_the_disk_cache(tmp_path, monkeypatch):
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 10)
    digest = hashing.cached_sha256(f, persist=True)
    hashing._MEMORY.clear()
    monkeypatch.setattr(hashing, "sha256_file", lambda p: pytest.fail("rehashed"))
    assert hashing.cached_sha256(f, persist=True) == digest


def test_non_utf8_file_names_are_cached(tmp_path):
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a surrogate escape in Python
    f = tmp_path / name
    f.write_bytes(b"y")
    assert hashing.cached_sha256(f, persist=True) == hashlib.sha256(b"y").hexdigest()
    hashing._MEMORY.clear()
    assert hashing.cached_sha256(f, persist=True) == hashlib.sha256(b"y").hexdigest()
