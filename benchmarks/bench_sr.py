"""SR benchmarks: our RRDBNet against spandrel's, and tiled inference's peak memory.

Not part of the default test run. Run with pytest (``pytest benchmarks/bench_sr.py -s``)
or directly (``python benchmarks/bench_sr.py``) to print the numbers.

- speed: the full ESRGAN generator (64 features, 23 blocks, growth 32; random weights,
  the published size) on a 64x64 crop of a real photograph, fp32 on the CPU. The same
  BasicSR-keyed file is loaded by ``load_rrdbnet`` and by spandrel; the runs are
  interleaved and the median time ratio ours / spandrel is reported. "ours" is the
  network as the esrgan component runs it (channels_last weights); the plain
  contiguous-format module is reported too.
- ``python benchmarks/bench_sr.py --cuda``: on a GPU, the full network on a 512x512
  input: peak CUDA memory and seams (uint8 differences) for tiles 256/128/64 against
  untiled, bf16/fp16 against fp32, and fp32-on-CUDA against the CPU (TF32 on and off).
- memory: peak RSS of a fresh process upscaling a 512x512 LR image through the esrgan
  component, untiled and with tiles of 128 and 64 (overlap 16). The network has the
  published width (64 features, the activation size that matters) but one RRDB block to
  keep the CPU time reasonable: depth does not change the peak, width and image size do.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SPEED_LR = 64
MEMORY_LR = 512
MEMORY_ARCH = {"num_feat": 64, "num_block": 1, "num_grow_ch": 32}


def _photo(size: int) -> torch.Tensor:
    """A real photograph (scikit-image's astronaut, 512x512), cropped to ``size``."""
    from skimage import data

    crop = data.astronaut()[:size, :size].copy()
    return torch.from_numpy(crop).permute(2, 0, 1).contiguous()


def _proc_status(field: str) -> float:
    """A memory field of /proc/self/status in MiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def speed(rounds: int = 7) -> dict:
    """Median seconds per forward for ours and spandrel's, interleaved, and their ratio."""
    import tempfile

    import spandrel

    from jcsr_bench.archs.rrdbnet import RRDBNet, load_rrdbnet
    from jcsr_bench.imaging.tiling import to_float

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "RRDBNet_x4_random.pth"
        torch.save({"params_ema": RRDBNet().state_dict()}, path)
        plain = load_rrdbnet(path)
        ours = load_rrdbnet(path).to(memory_format=torch.channels_last)
        theirs = spandrel.ModelLoader().load_from_file(path).model.eval()
    x = to_float(_photo(SPEED_LR), "cpu")
    runs = {"ours": ours, "ours_contiguous": plain, "spandrel": theirs}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        outputs = {name: net(x) for name, net in runs.items()}  # warm-up
        for _ in range(rounds):
            for name, net in runs.items():
                start = time.perf_counter()
                net(x)
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "input": f"1x3x{SPEED_LR}x{SPEED_LR} fp32 CPU, {torch.get_num_threads()} threads",
        "median_s": med,
        "min_s": {name: min(t) for name, t in times.items()},
        "ratio_ours_over_spandrel": med["ours"] / med["spandrel"],
        "ratio_contiguous_over_spandrel": med["ours_contiguous"] / med["spandrel"],
        "max_abs_diff": float((outputs["ours"] - outputs["spandrel"]).abs().max()),
    }


def _peak_rss_child(tile: int) -> None:
    """In a fresh process: build, upscale once, print resident memory (MiB).

    The high-water mark (VmHWM) is reset after the imports and the network's first
    small run, so ``peak_rss_mib - rss_before_mib`` is what the upscale itself needed.
    """
    from jcsr_bench_plugins.sr.esrgan import ESRGAN

    model = ESRGAN(arch=MEMORY_ARCH, tile=tile, tile_overlap=16)
    image = _photo(MEMORY_LR)
    model.upscale(image[:, :8, :8])  # builds the net; small input
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _proc_status("VmRSS")
    start = time.perf_counter()
    out = model.upscale(image)
    seconds = time.perf_counter() - start
    peak = _proc_status("VmHWM")
    print(json.dumps({"tile": tile, "rss_before_mib": round(before), "peak_rss_mib": round(peak),
                      "upscale_mib": round(peak - before), "seconds": round(seconds, 1),
                      "output": list(out.shape)}))


def memory(tiles: tuple[int, ...] = (0, 128, 64)) -> list[dict]:
    """Peak RSS per tile size (0 = untiled), each measured in its own process."""
    results = []
    for tile in tiles:
        proc = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(tile)],
            capture_output=True, text=True, check=True,
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def cuda_check() -> dict:
    """On a GPU: tiling's memory and seams with the full ESRGAN network, and precisions."""
    import warnings

    from jcsr_bench.archs.rrdbnet import RRDBNet
    from jcsr_bench.imaging.tiling import run_guarded, to_float
    from jcsr_bench_plugins.sr.esrgan import ESRGAN

    def run(tile: int = 0, precision: str = "fp32") -> tuple[torch.Tensor, float, float, int]:
        model = ESRGAN(arch={}, tile=tile, tile_overlap=16, precision=precision).to("cuda")
        model.upscale(image[:, :16, :16])
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = model.upscale(image)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        return out, seconds, peak, len(caught)

    image = _photo(MEMORY_LR)
    result: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "input": f"{MEMORY_LR}x{MEMORY_LR} LR, full ESRGAN (64/23/32) random init"}
    ref, seconds, peak, _ = run()
    result["untiled"] = {"seconds": round(seconds, 3), "peak_mib": round(peak)}
    for tile in (256, 128, 64):
        out, seconds, peak, _ = run(tile)
        diff = (out.int() - ref.int()).abs()
        result[f"tile{tile}"] = {"seconds": round(seconds, 3), "peak_mib": round(peak),
                                 "max_diff_255": int(diff.max()),
                                 "frac_pixels_differing": float((diff > 0).float().mean())}
    for precision in ("bf16", "fp16"):
        out, seconds, peak, warned = run(0, precision)
        diff = (out.int() - ref.int()).abs().float()
        result[precision] = {"seconds": round(seconds, 3), "peak_mib": round(peak),
                             "mean_abs_diff_255": float(diff.mean()),
                             "max_diff_255": int(diff.max()), "nan_fallbacks": warned}
    # fp32 on CUDA vs the CPU (TF32 off, as run_guarded does, and on: cuDNN's default)
    torch.manual_seed(0)
    net = RRDBNet().eval()
    x = to_float(_photo(48), "cpu")
    with torch.inference_mode():
        cpu = net(x)
        gpu_net = net.to("cuda")
        exact = run_guarded(gpu_net, x.cuda(), "fp32").cpu()
        torch.backends.cudnn.allow_tf32 = True
        tf32 = gpu_net(x.cuda()).float().cpu()
    result["cuda_vs_cpu_max_abs"] = {"fp32": float((exact - cpu).abs().max()),
                                     "tf32": float((tf32 - cpu).abs().max())}
    return result


def test_speed_against_spandrel(benchmark):
    """Acceptance: ours is no slower than spandrel on the same weights and input."""
    result = benchmark.pedantic(speed, kwargs={"rounds": 5}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(json.dumps(result, indent=2))
    assert result["max_abs_diff"] < 1e-4
    assert result["ratio_ours_over_spandrel"] <= 1.05


def test_tiled_peak_memory(benchmark):
    """Acceptance: peak memory follows the tile, not the image."""
    result = benchmark.pedantic(memory, rounds=1, iterations=1)
    benchmark.extra_info["memory"] = result
    print(json.dumps(result, indent=2))
    by_tile = {r["tile"]: r["upscale_mib"] for r in result}
    assert by_tile[64] < by_tile[128] < by_tile[0]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rss-child":
        _peak_rss_child(int(sys.argv[2]))
    elif sys.argv[1:] == ["--cuda"]:
        print(json.dumps(cuda_check(), indent=2))
    else:
        print(json.dumps({"speed": speed(), "memory": memory()}, indent=2))
