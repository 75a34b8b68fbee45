"""Benchmark: Ray workers vs one worker, and two local runs sharing a machine.

1. The default suite offline (samples x jpeg, webp x bicubic, lanczos, every quality of
   the ladders), cold cache each time: ``--executor ray`` with 2 workers x 1 thread vs
   1 worker x 1 thread on one local Ray session (its start-up is timed separately).
   Target on a 2-core machine: >= 1.6x faster.
2. Two concurrent local runs (``--threads 1`` each, separate processes and caches) vs
   one alone. Target: each <= 2.5x its solo time.

Pairs are interleaved and repeated; medians are reported. On a machine shared with
other work the figures are noisy: report them with the load you saw.

    python benchmarks/bench_scaling.py [--limit N] [--repeats R]
    pytest benchmarks/bench_scaling.py -s          # asserts the targets (limit 3)
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOLO_SCRIPT = """
import io, sys, time
from pathlib import Path
from jcsr_bench.run.engine import run
from jcsr_bench.plugin.registry import load_registry
start = time.perf_counter()
summary = run(registry=load_registry(), output=Path(sys.argv[1]), progress=False,
              stream=io.StringIO(), device="cpu", threads=1,
              limit=int(sys.argv[2]) if sys.argv[2] != "all" else None)
assert summary.exit_code == 0 and summary.computed == summary.cells, summary.failed
print(time.perf_counter() - start)
"""


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, JCSR_BENCH_CACHE=str(cache), JCSR_BENCH_OFFLINE="1",
                JCSR_BENCH_LOAD_PLUGINS="", OMP_NUM_THREADS="1")


def ray_run(workdir: Path, tag: str, workers: int, limit: int | None) -> float:
    """One cold-cache default-suite run on the open Ray session; seconds."""
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench.run.engine import run

    os.environ["JCSR_BENCH_CACHE"] = str(workdir / f"cache-{tag}")  # cold: a new cache
    start = time.perf_counter()
    summary = run(registry=load_registry(), output=workdir / f"out-{tag}", progress=False,
                  stream=io.StringIO(), device="cpu", limit=limit, executor="ray",
                  workers=workers, threads_per_worker=1)
    elapsed = time.perf_counter() - start
    assert summary.exit_code == 0 and summary.computed == summary.cells, summary.failed
    return elapsed


def local_runs(workdir: Path, tag: str, count: int, limit: int | None) -> list[float]:
    """``count`` local runs started together in their own processes; their seconds."""
    script = workdir / "solo.py"
    script.write_text(SOLO_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(workdir / f"out-{tag}-{i}"),
                               str(limit or "all")], stdout=subprocess.PIPE, text=True,
                              env=_env(workdir / f"cache-{tag}-{i}")) for i in range(count)]
    times = []
    for proc in procs:
        out, _ = proc.communicate()
        assert proc.returncode == 0, out
        times.append(float(out.strip().splitlines()[-1]))
    return times


def measure(workdir: Path, limit: int | None, repeats: int) -> dict[str, float]:
    import ray

    for key, value in _env(workdir).items():
        os.environ.setdefault(key, value)
    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray_start_s = time.perf_counter() - started
    one, two = [], []
    try:
        for r in range(repeats):
            one.append(ray_run(workdir, f"1w-{r}", 1, limit))
            two.append(ray_run(workdir, f"2w-{r}", 2, limit))
    finally:
        ray.shutdown()
    solo, pair = [], []
    for r in range(repeats):
        solo += local_runs(workdir, f"solo-{r}", 1, limit)
        pair += local_runs(workdir, f"pair-{r}", 2, limit)
    return {"ray_start_s": ray_start_s, "one_worker_s": statistics.median(one),
            "two_workers_s": statistics.median(two),
            "speedup": statistics.median(one) / statistics.median(two),
            "solo_s": statistics.median(solo), "concurrent_s": max(pair),
            "concurrent_ratio": max(pair) / statistics.median(solo),
            "load_1min": os.getloadavg()[0]}


def test_two_workers_scale_and_concurrent_runs_share_fairly(tmp_path):
    numbers = measure(tmp_path, limit=3, repeats=1)
    print(f"\n{numbers}")
    assert numbers["speedup"] >= 1.6, numbers
    assert numbers["concurrent_ratio"] <= 2.5, numbers


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, help="images per dataset (default: all 7)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), args.limit, args.repeats)
    print(f"default suite{'' if args.limit is None else f' (limit {args.limit})'}, cold cache, "
          f"median of {args.repeats}; 1-min load average at the end {result['load_1min']:.1f}")
    print(f"  Ray start-up: {result['ray_start_s']:.1f} s (not in the times below)")
    print(f"  Ray 1 worker x 1 thread: {result['one_worker_s']:.1f} s; 2 workers x 1 thread: "
          f"{result['two_workers_s']:.1f} s -> {result['speedup']:.2f}x")
    print(f"  local --threads 1 alone: {result['solo_s']:.1f} s; two at once: slower one "
          f"{result['concurrent_s']:.1f} s -> {result['concurrent_ratio']:.2f}x solo")
