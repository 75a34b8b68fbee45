"""Test isolation: no installed third-party plugin, no network, no user caches."""

import os
import tempfile

# Set before jcsr_bench builds its plugin manager: the project's own tests never load
# whatever third-party plugins happen to be installed, and never touch the network.
os.environ["JCSR_BENCH_LOAD_PLUGINS"] = ""
os.environ["JCSR_BENCH_OFFLINE"] = "1"
os.environ.pop("JCSR_BENCH_STRICT_PLUGINS", None)
_session_cache = tempfile.mkdtemp(prefix="jcsr-bench-tests-")
os.environ["JCSR_BENCH_CACHE"] = os.path.join(_session_cache, "cache")
os.environ["TORCH_HOME"] = os.path.join(_session_cache, "torch")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Each test gets its own caches, so results never leak between tests."""
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "jcsr-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("JCSR_BENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
