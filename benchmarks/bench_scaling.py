"""Benchmark: whole `run` commands on one machine -- worker processes, one thread, Ray.

1. The selection ``run --dataset samples --codec jpeg,webp --sr bicubic,lanczos``
   (532 cells), cold cache, the whole command as a user types it (start-up, planning,
   units, reports): the default (one worker process per core) and ``--executor ray
   --workers 2 --threads-per-worker 1`` against ``--threads 1`` (one process, one
   thread). Target on a 2-core machine: default >= 1.7x faster.
2. ``--sizes 7,28,112``: the same codecs x SR on that many images (192 x 192 crops of
   the bundled photos), wall and CPU per cell for ``--threads 1``, the default and Ray:
   the cost per cell should stay flat.

Runs are interleaved and repeated; medians are reported. CPU is the whole process tree
(driver, forkserver, workers, Ray), sampled every 0.1 s. On a machine shared with other
work the figures are noisy: report them with the load average printed.

    python benchmarks/bench_scaling.py [--repeats R] [--sizes 7,28,112] [--no-ray]
                                       [--no-selection]
    pytest benchmarks/bench_scaling.py -s          # asserts the target
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SELECTION = ["--codec", "jpeg,webp", "--sr", "bicubic,lanczos"]
CONFIGS = {
    "--threads 1": ["--threads", "1"],
    "default": [],
    "ray 2x1": ["--executor", "ray", "--workers", "2", "--threads-per-worker", "1"],
}
CROP = 192


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ, JCSR_BENCH_CACHE=str(cache), JCSR_BENCH_OFFLINE="1",
               JCSR_BENCH_LOAD_PLUGINS="")
    env.pop("OMP_NUM_THREADS", None)  # the defaults as a user gets them
    return env


def whole_command(args: list[str], workdir: Path, tag: str) -> tuple[float, float, str]:
    """One cold run of ``jcsr-bench run ARGS``: (wall s, CPU s of the process tree, summary)."""
    import psutil

    out, cache = workdir / f"out-{tag}", workdir / f"cache-{tag}"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "jcsr_bench.cli.main", "run", *args,
                             "--output", str(out)], env=_env(cache), cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    root, seen = psutil.Process(proc.pid), {}
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                seen[p.pid] = times.user + times.system  # each live process sampled
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - start
    stdout = proc.stdout.read()
    assert proc.returncode == 0, stdout[-2000:]
    summary = next(line for line in stdout.splitlines() if " cells: " in line)
    return wall, sum(seen.values()), summary


def selection(workdir: Path, repeats: int, ray: bool) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) per configuration on the samples selection, interleaved."""
    times: dict[str, list[tuple[float, float]]] = {}
    for r in range(repeats):
        for name, extra in CONFIGS.items():
            if name.startswith("ray") and not ray:
                continue
            wall, cpu, _ = whole_command(["--dataset", "samples", *SELECTION, *extra],
                                         workdir, f"sel-{name.replace(' ', '')}-{r}")
            times.setdefault(name, []).append((wall, cpu))
    return {name: (statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts))
            for name, ts in times.items()}


def make_crops(folder: Path, count: int) -> Path:
    """``count`` 192 x 192 crops of the bundled photos (offsets spread over each photo)."""
    from PIL import Image

    from jcsr_bench.plugin.registry import load_registry

    photos = [image for _, image in load_registry().build("datasets", "samples")]
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-count // len(photos))
    for i in range(count):
        image = photos[i % len(photos)]
        k = i // len(photos)
        h, w = image.shape[1:]
        side = max(1, int(per ** 0.5 + 0.999))
        top = (h - CROP) * (k // side) // max(1, side - 1) if side > 1 else 0
        left = (w - CROP) * (k % side) // max(1, side - 1) if side > 1 else 0
        crop = image[:, top:top + CROP, left:left + CROP].permute(1, 2, 0).numpy()
        Image.fromarray(crop).save(folder / f"crop{i:04d}.png")
    return folder


def scaling(workdir: Path, sizes: list[int], ray: bool) -> list[tuple[int, str, float, float,
                                                                      int]]:
    """(images, configuration, wall s, CPU s, cells) for each size and configuration."""
    rows = []
    registry = workdir / "crops.yaml"
    registry.write_text("datasets:\n" + "".join(
        f"  crops{n}: {{type: folder, root: {make_crops(workdir / f'crops{n}', n)}}}\n"
        for n in sizes))
    for n in sizes:
        for name, extra in CONFIGS.items():
            if name.startswith("ray") and not ray:
                continue
            wall, cpu, summary = whole_command(
                ["--registry", str(registry), "--dataset", f"crops{n}", *SELECTION, *extra],
                workdir, f"crops{n}-{name.replace(' ', '')}")
            rows.append((n, name, wall, cpu, int(summary.split(" cells:")[0])))
    return rows


def test_default_is_faster_than_one_thread(tmp_path):
    numbers = selection(tmp_path, repeats=1, ray=False)
    print(f"\n{numbers}")
    assert numbers["--threads 1"][0] / numbers["default"][0] >= 1.7, numbers


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", help="also the scaling table, e.g. 7,28,112")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-selection", action="store_true", help="only the scaling table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {} if args.no_selection else selection(Path(tmp), args.repeats,
                                                        not args.no_ray)
        if result:
            print(f"run --dataset samples {' '.join(SELECTION)} (532 cells), cold cache, "
                  f"whole command, median of {args.repeats}; 1-min load average at the end "
                  f"{os.getloadavg()[0]:.1f}")
        base = result.get("--threads 1", (1.0,))[0]
        for name, (wall, cpu) in result.items():
            print(f"  {name:12s} wall {wall:5.1f} s  CPU {cpu:5.1f} s  -> {base / wall:.2f}x "
                  "vs --threads 1")
        if args.sizes:
            print(f"\nscaling ({CROP} x {CROP} crops; per cell in ms)")
            print("| images | configuration | cells | wall s | CPU s | wall/cell | CPU/cell |")
            print("|---|---|---|---|---|---|---|")
            for n, name, wall, cpu, cells in scaling(Path(tmp), [int(s) for s in
                                                                  args.sizes.split(",")],
                                                     not args.no_ray):
                print(f"| {n} | {name} | {cells} | {wall:.1f} | {cpu:.1f} | "
                      f"{1000 * wall / cells:.1f} | {1000 * cpu / cells:.1f} |")
            print(f"1-min load average at the end {os.getloadavg()[0]:.1f}")
