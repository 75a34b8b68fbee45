"""Metric speed and peak memory: ours against the reference implementations (pytest-benchmark).

Not part of the default test run. Run with::

    pytest benchmarks/bench_metrics.py                       # 512x512 and DIV2K-sized
    JCSR_BENCH_24MP=1 pytest benchmarks/bench_metrics.py     # + 6000x4000 (slow: the
                                                             #   reference needs ~7 GB)

Images: a real photograph (scikit-image's astronaut, coffee, rocket and chelsea tiled
2x2, resized with Pillow's bicubic) against its JPEG q30 decode. Each metric is timed as
the engine calls it (``compute_metric`` on the CPU with one thread): ``ours-first`` with a
fresh reference (the first cell of an image: the MS-SSIM reference statistics are built),
``ours`` with the reference prepared by an earlier cell (every later cell), and
``reference``: pytorch-msssim's ``ms_ssim`` for MS-SSIM, CompressAI's evaluator ``psnr``
for PSNR-RGB and the whole-image float64 formula for PSNR-Y. ``extra_info`` carries the
peak-RSS growth of one call in a fresh process (MiB above the process with both images
loaded). ``test_ms_ssim_speedup`` interleaves ours and pytorch-msssim on the DIV2K-sized
pair, prints GFLOP/s against the estimate (0.9 GFLOP/MP) and fails below 4x. With
``JCSR_BENCH_24MP=1``,
``test_24mp_run_peak_rss`` also runs ``jcsr-bench run --codec jpeg --sr bicubic`` (two
qualities, cold cache) on a folder holding one 6000x4000 PNG and fails above 1.5 GB peak
RSS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SIZES = {"512": (512, 512), "div2k": (1356, 2040)}
if os.environ.get("JCSR_BENCH_24MP"):
    SIZES["24mp"] = (4000, 6000)
METRICS = ("psnr-rgb", "psnr-y", "ms-ssim-rgb")
IMPLEMENTATIONS = ("ours-first", "ours", "reference")
# 5 filtered maps x 3 channels x 2 separable 11-tap passes (2 FLOP a tap) x 4/3 (pyramid)
GFLOP_PER_MP = 0.9

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
from metric_cases import implementation, pair  # noqa: E402


def _peak_rss_mib(tmp_path: Path, args: list[str]) -> float:
    """Peak RSS (MiB) of one whole ``jcsr-bench run`` on the ``big`` dataset: one process
    (``--workers 1``: the local pool's workers would each hold their own image), one
    thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JCSR_BENCH_CACHE": str(tmp_path / "cache")}
    argv = ["jcsr-bench", "run", "--offline", "--registry", str(tmp_path / "reg.yaml"),
            "--dataset", "big", "--codec", "jpeg", "--sr", "bicubic", "--workers", "1", *args,
            "--output", str(tmp_path / "out")]
    script = textwrap.dedent(f"""
        import resource, runpy, sys
        sys.argv = {argv!r}
        try:
            runpy.run_module("jcsr_bench.cli.main", run_name="__main__")
        except SystemExit as exit:
            assert not exit.code, exit.code
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, env=env,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])



def _peak_growth_mib(metric: str, kind: str, size: tuple[int, int]) -> float:
    """Peak-RSS growth (MiB) of one call in a fresh single-threaded process."""
    script = textwrap.dedent(f"""
        import json, resource, sys, torch
        sys.path.insert(0, {str(BENCHMARKS)!r})
        from metric_cases import implementation, pair
        torch.set_num_threads(1)
        x, y = pair(*{size!r})
        fn = implementation({metric!r}, {kind!r}, x, y)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps((after - before) / 1024))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pairs():
    import torch

    torch.set_num_threads(1)
    return {name: pair(*size) for name, size in SIZES.items()}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
@pytest.mark.parametrize("metric", METRICS)
def test_metric(benchmark, pairs, metric, kind, size):
    benchmark.group = f"{metric} {size}"
    fn = implementation(metric, kind, *pairs[size])
    rounds = 1 if size == "24mp" else 3
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info["peak_rss_growth_mib"] = round(
        _peak_growth_mib(metric, kind, SIZES[size]), 1)


def test_ms_ssim_speedup(pairs):
    """Interleaved medians on the DIV2K-sized pair: ours (fresh reference) vs pytorch-msssim."""
    x, y = pairs["div2k"]
    ours = implementation("ms-ssim-rgb", "ours-first", x, y)
    reference = implementation("ms-ssim-rgb", "reference", x, y)
    assert abs(ours() - reference()) <= 1e-6
    times = {"ours": [], "reference": []}
    for _ in range(5):
        for name, fn in (("ours", ours), ("reference", reference)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["reference"] / medians["ours"]
    gflop = GFLOP_PER_MP * x.shape[1] * x.shape[2] / 1e6
    print(f"\nMS-SSIM 2040x1356, 1 thread: ours {medians['ours']:.3f} s "
          f"({gflop / medians['ours']:.1f} GFLOP/s of the {GFLOP_PER_MP} GFLOP/MP estimate), "
          f"pytorch-msssim {medians['reference']:.3f} s "
          f"({gflop / medians['reference']:.1f} GFLOP/s), speed-up {ratio:.1f}x")
    assert ratio >= 4, medians




@pytest.mark.skipif("24mp" not in SIZES, reason="set JCSR_BENCH_24MP=1")
def test_24mp_run_peak_rss(tmp_path):
    """The whole run on one 24-megapixel photo stays under 1.5 GB peak RSS."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    x, _ = pair(*SIZES["24mp"])
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(photos / "big.png")
    del x
    (tmp_path / "reg.yaml").write_text(f"datasets:\n  big: {{type: folder, root: {photos}}}\n")
    peak_mib = _peak_rss_mib(tmp_path, ["--qualities", "10,50"])
    print(f"\n24 MP run: peak RSS {peak_mib:.0f} MiB")
    assert peak_mib <= 1.5 * 1024


#: The opt-in metrics (issue 28): each built through the registry as a run builds it.
OPT_IN_METRICS = ("psnr-y709", "psnr-u709", "psnr-v709", "ms-ssim-y", "vif", "fsim", "nlpd",
                  "iw-ssim", "vmaf", "psnr-hvs", "psnr-hvs-m", "ssimulacra2", "cvvdp")


def _opt_in_cost(metric: str, size: tuple[int, int]) -> dict[str, float]:
    """Seconds per megapixel (first cell of an image, and a later cell with the reference
    prepared) and the peak-RSS growth of the first call, in a fresh 1-thread process."""
    script = textwrap.dedent(f"""
        import json, resource, sys, time, torch
        sys.path.insert(0, {str(BENCHMARKS)!r})
        from metric_cases import pair
        from jcsr_bench.imaging.quality import compute_metric
        from jcsr_bench.plugin.registry import load_registry
        torch.set_num_threads(1)
        x, y = pair(*{size!r})
        metric = load_registry([]).build("metrics", {metric!r})
        small = [t[:, :256, :256].clone() for t in (x, y)]
        compute_metric(metric, *small, device="cpu")  # imports and model set-up
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        compute_metric(metric, x, y, device="cpu")
        first = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        compute_metric(metric, x, y.clone(), device="cpu")
        later = time.perf_counter() - start
        mp = x.shape[1] * x.shape[2] / 1e6
        print(json.dumps({{"first_s_per_mp": first / mp, "later_s_per_mp": later / mp,
                           "peak_rss_growth_mib": (peak - before) / 1024,
                           "peak_rss_mib": peak / 1024}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("metric", OPT_IN_METRICS)
def test_opt_in_metric_cost(metric):
    """The cost table of docs/metrics.md (DIV2K-sized pair, 2040x1356, one CPU thread)."""
    cost = _opt_in_cost(metric, SIZES["div2k"])
    print(f"\n{metric}: {cost['first_s_per_mp']:.3f} s/MP first cell, "
          f"{cost['later_s_per_mp']:.3f} s/MP later cells, peak RSS growth "
          f"{cost['peak_rss_growth_mib']:.0f} MiB (process peak {cost['peak_rss_mib']:.0f} MiB)")
    assert cost["first_s_per_mp"] > 0


@pytest.mark.skipif("24mp" not in SIZES, reason="set JCSR_BENCH_24MP=1")
def test_24mp_jpeg_ai_run_peak_rss(tmp_path):
    """``run --metrics jpeg-ai`` on one 24-megapixel photo: peak RSS (issue 28: < 2 GB)."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    x, _ = pair(*SIZES["24mp"])
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(photos / "big.png")
    del x
    (tmp_path / "reg.yaml").write_text(f"datasets:\n  big: {{type: folder, root: {photos}}}\n")
    peak_mib = _peak_rss_mib(tmp_path, ["--qualities", "50", "--metrics", "jpeg-ai"])
    print(f"\n24 MP run --metrics jpeg-ai: peak RSS {peak_mib:.0f} MiB")
    assert peak_mib <= 2 * 1024


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s"]))
