"""torch's intra-op threads are set explicitly for a run and stated in its report (13.3)."""

from __future__ import annotations

import torch
from fakes import FakeSR, go, make_registry

from jcsr_bench.kit.devices import default_threads, usable_cores
from jcsr_bench.results.store import load_curves


class ThreadSpy(FakeSR):
    seen: list[int] = []

    def upscale(self, image):
        ThreadSpy.seen.append(torch.get_num_threads())
        return super().upscale(image)


def test_threads_are_set_for_the_run_and_stated_in_the_report(tmp_path, monkeypatch):
    registry = make_registry(tmp_path / "reg")
    original = registry.build
    monkeypatch.setattr(registry, "build", lambda kind, name, **kw: ThreadSpy() if (
        kind, name) == ("sr", "up") else original(kind, name, **kw))
    before = torch.get_num_threads()
    wanted = 3 if before != 3 else 2
    ThreadSpy.seen.clear()
    summary = go(registry, tmp_path, codecs=["fa"], srs=["up"], threads=wanted)
    assert summary.exit_code == 0
    assert ThreadSpy.seen and set(ThreadSpy.seen) == {wanted}
    assert torch.get_num_threads() == before  # restored after the run
    assert summary.execution == {"executor": "local", "workers": 1,
                                 "threads_per_worker": wanted}
    _, meta = load_curves(summary.db_path)
    assert f"torch threads {wanted}); local executor" in meta["device"]
    header = (tmp_path / "out" / "leaderboard.md").read_text()
    assert f"torch threads {wanted}); local executor" in header


def test_default_threads_follow_omp_num_threads_else_a_share_of_the_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert default_threads() == 5 and default_threads(workers=4) == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == usable_cores()
    assert default_threads(workers=2 * usable_cores()) == 1  # never below one


def test_cli_rejects_a_bad_thread_count(tmp_path):
    from helpers import run_cli

    result = run_cli("run", "--threads", "0", "--dry-run", env={
        "JCSR_BENCH_LOAD_PLUGINS": "", "JCSR_BENCH_OFFLINE": "1"}, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--threads must be a positive integer, got 0" in result.stderr
