"""The evaluation engine: plan -> execute -> record, every cell once, no work done twice.

``run`` reads top-down:

1. **plan** (``jcsr_bench.run.plan``): resolve the matrix, build the components, report every
   missing piece before any compute, key every cell and mark those the store lacks;
2. **execute** (``jcsr_bench.run.execute``): the executor runs the work units -- one
   (image, codec, quality) each: LR once per image, encode/decode once (or from the disk
   cache), then every SR model and metric of the group (``jcsr_bench.run.workunit``);
3. **record** (``jcsr_bench.run.record``): the driver stores each result as it arrives, one
   transaction per cell, so a killed run resumes where it stopped; a cell whose key
   changed (new weights) is recomputed, others are not;
4. **report** (``jcsr_bench.run.summary``): exports, leaderboard, plots, summary.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from jcsr_bench.imaging.images import pixel_hash
from jcsr_bench.imaging.quality import release_prepared
from jcsr_bench.kit.devices import (
    check_threads,
    default_threads,
    describe_device,
    resolve_device,
    usable_cores,
)
from jcsr_bench.kit.environment import fingerprint, git_commit, versions
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.version import __version__
from jcsr_bench.results.aggregate import AGGREGATES, RATES
from jcsr_bench.results.store import Store, now_iso, quality_text
from jcsr_bench.run.plan import Plan, Settings, make_plan, print_plan
from jcsr_bench.run.preflight import check_run_paths
from jcsr_bench.run.record import Recorder
from jcsr_bench.run.requirements import Skipped, missing_error
from jcsr_bench.run.summary import Failure, RunSummary, print_summary
from jcsr_bench.run.workunit import UnitContext

RATE_METRICS = ("bits", "bpp", "bpp_lr")
TIMING_METRICS = ("encode_s", "decode_s", "sr_s")
CONVENTIONS = (
    "bits = 8 x payload bytes (headers included); bpp = bits / HR pixels; bpp_lr = bits / "
    "codec-input pixels; psnr-rgb: 8-bit RGB, range 255, per image; psnr-y: BT.601 luma "
    "16-235, border = scale; ms-ssim-rgb: pytorch-msssim, range 255, linear, n/a when the "
    "short side <= 160 px; curves average per-image values; SR 'none' (scale 1) is scored "
    "against the codec input"
)


def run(
    *,
    registry: Any,
    suite: str | None = None,
    datasets: list[str] | None = None,
    codecs: list[str] | None = None,
    srs: list[str] | None = None,
    qualities: list[Any] | None = None,
    scale: int = 4,
    kernel: str = "matlab",
    limit: int | None = None,
    device: str = "auto",
    output: Path = Path("jcsr-results"),
    overwrite: str = "missing",
    fail_fast: bool = False,
    dry_run: bool = False,
    train: bool = False,
    anchor: str | None = None,
    metrics: list[str] | None = None,
    sr_options: dict[str, Any] | None = None,
    progress: bool | None = None,
    stream: TextIO | None = None,
    cache_root: Path | None = None,
    threads: int | None = None,
    executor: str = "local",
    workers: int | None = None,
    threads_per_worker: int | None = None,
    gpus_per_worker: float = 0.0,
    ray_address: str | None = None,
    bd_aggregate: str = "curve",
    rate: str = "mean",
) -> RunSummary:
    """``jcsr-bench run``: evaluate every dataset x codec x quality x SR cell.

    With no suite and no lists the ``default`` suite runs and components whose weights
    are not available are skipped (listed with the remedy); explicitly requested ones
    raise ``WeightsError`` before any compute. ``sr_options`` (``tile``,
    ``tile_overlap``, ``precision``) go to the SR types that declare them. ``metrics``
    chooses the metrics by name (default: all).
    ``executor`` is ``local`` (``workers`` processes of this machine with
    ``threads_per_worker`` threads each, default one per core; or this process with
    ``threads`` torch threads when only ``threads`` is given) or ``ray``
    (``workers`` tasks at a time with ``threads_per_worker`` threads and
    ``gpus_per_worker`` GPUs each, on the cluster at ``ray_address`` or a local Ray).
    ``bd_aggregate`` (``curve`` | ``per-image``) and ``rate`` (``mean`` | ``pooled``):
    how the folder's leaderboard turns per-image results into BD numbers (recorded with
    the run). Returns a :class:`RunSummary`.
    """
    started = time.perf_counter()
    reporting = {"bd_aggregate": _choice("--bd-aggregate", bd_aggregate, AGGREGATES),
                 "rate": _choice("--rate", rate, RATES)}
    stream = stream or sys.stdout
    check_threads(threads, "--threads")
    print(registry.files_text(), file=stream)  # an unexpected ./jcsr-bench.yaml is noticed
    settings = Settings(scale, kernel, limit, resolve_device(device), Path(output), overwrite,
                        fail_fast, cache_root)
    check_run_paths(settings.output, settings.cache_root, write=not dry_run)
    plan = make_plan(registry, settings, suite=suite,
                     lists={"datasets": datasets, "codecs": codecs, "sr": srs},
                     qualities=qualities, anchor=anchor, metrics=metrics,
                     sr_options={k: v for k, v in (sr_options or {}).items() if v is not None},
                     train=_trainer(registry, settings.device, stream, executor,
                                    gpus_per_worker, ray_address) if train else None,
                     fetch=not dry_run)
    cells = plan.cells
    summary = RunSummary(0, settings.output, settings.db_path, cells=len(cells),
                         cached=len(cells) - plan.pending, skipped=plan.skipped,
                         dry_run=dry_run)
    if dry_run:
        print_plan(plan, stream)
        summary.exit_code = 2 if plan.blocked else 0
        summary.elapsed_s = time.perf_counter() - started
        return summary
    if plan.blocked:
        raise missing_error(plan.missing, plan.downloads)

    runner = _executor(executor, threads, workers, threads_per_worker, gpus_per_worker,
                       ray_address, _unit_count(plan) if settings.device == "cpu" else 0)
    try:
        with _torch_threads(runner.threads):
            recorder = _execute(plan, runner, registry, progress, reporting)
    finally:
        close = getattr(runner, "close", None)
        if callable(close):
            close()
    summary.execution = runner.describe()
    with Store(settings.db_path) as store:
        states = {(r["dataset"], r["image"], r["codec"], quality_text(r["quality"]), r["sr"]): r
                  for r in store.rows(cells)}
    summary.computed = recorder.computed
    summary.reporting = reporting
    summary.codec_runs, summary.codec_cache_hits = recorder.codec_runs, recorder.codec_hits
    summary.failed = [Failure(r["dataset"], r["image"], r["codec"], r["quality"], r["sr"],
                              r["error"] or "") for r in states.values() if r["status"] != "ok"]
    with _torch_threads(threads or default_threads()):  # the report recomputes its images
        summary = _report(plan, summary, states, recorder.stopped, stream, started, registry)
    if recorder.interrupted:
        print(f"jcsr-bench: interrupted (Ctrl-C or SIGTERM) after {recorder.computed} new "
              "cell(s); the reports cover the results stored so far; run the same command "
              "again to compute the rest.", file=stream)
        summary.exit_code = EXIT_INTERRUPTED
    return summary


EXECUTORS = ("local", "ray")
EXIT_INTERRUPTED = 130  # as for Ctrl-C; SIGTERM is treated the same (cli.main)


def _executor(name: str, threads: int | None, workers: int | None,
              threads_per_worker: int | None, gpus_per_worker: float,
              ray_address: str | None, units: int = 0) -> Any:
    """The executor named by ``--executor``, with its worker and thread settings.

    Local, by default: one single-threaded worker process per usable core when there is
    more than one unit to compute on the CPU (measured: units are independent, so processes scale
    where one process's torch threads do not); ``--threads N`` alone, or ``--workers 1``,
    runs the units in this process with N torch threads.
    """
    check_threads(workers, "--workers")
    check_threads(threads_per_worker, "--threads-per-worker")
    if name == "local":
        given = [flag for flag, value in (("--gpus-per-worker", gpus_per_worker or None),
                 ("--ray-address", ray_address)) if value is not None]
        if given:
            raise JcsrError(f"{', '.join(given)} need(s) --executor ray")
        from jcsr_bench.run.execute import LocalExecutor, PoolExecutor

        if workers is None and threads is None and threads_per_worker is None:
            workers = min(usable_cores(), units) if units > 1 else 1
            if workers > 1:
                return PoolExecutor(workers, 1, auto=True)
        if workers is None or workers == 1:
            return LocalExecutor(threads or threads_per_worker or default_threads())
        return PoolExecutor(workers, threads_per_worker or threads or default_threads(workers))
    if name == "ray":
        from jcsr_bench.run.ray_executor import RayExecutor

        return RayExecutor(workers=workers, threads_per_worker=threads_per_worker or threads,
                           gpus_per_worker=gpus_per_worker, address=ray_address)
    raise JcsrError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")


def _unit_count(plan: Plan) -> int:
    """How many work units the run has to compute (the auto worker count's ceiling)."""
    return sum(len(plan.units(d, image)) for d in plan.datasets for image in d.images
               if image.pending())


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set explicitly for the run (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _trainer(registry: Any, device: str, stream: TextIO, executor: str,
             gpus_per_worker: float, ray_address: str | None):
    """``run --train``: train the untrained adaptive models the planner found (as
    ``train-sr`` does; with ``--executor ray``, the qualities as concurrent Ray tasks)."""
    options = ({"executor": "ray", "gpus_per_job": gpus_per_worker,
                "ray_address": ray_address} if executor == "ray" else {})

    def train(missing: list) -> None:
        from jcsr_bench.training.adaptive import train_missing

        for sr, codec, qualities in missing:
            print(f"training {sr.name} for codec {codec.name} at qualities "
                  f"{', '.join(map(str, qualities))} (--train)", file=stream)
            train_missing(registry, sr.name, codec.name, list(qualities), device=device,
                          **options)
    return train


def _choice(flag: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise JcsrError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _execute(plan: Plan, executor: Any, registry: Any, progress: bool | None,
             reporting: dict[str, str]) -> Any:
    """Run every pending unit and record each result as it arrives."""
    settings = plan.settings
    context = UnitContext(settings.scale, settings.kernel, settings.device,
                          {c.name: c.obj for c in plan.codecs}, plan.models(), plan.metrics)
    prepare = getattr(executor, "prepare", None)
    if callable(prepare):
        prepare(context)
    meta = _metadata(plan, registry, executor)
    meta["config"].update(reporting)
    recorder = Recorder(plan, meta, progress=progress)
    try:
        with recorder:
            for result in executor.run(plan, context, recorder.cached):
                if recorder.add(result):
                    break
    except KeyboardInterrupt:  # the run row says 'interrupted'; the caller still reports
        recorder.interrupted = True
    finally:
        release_prepared()  # the reports that follow need none of it
    return recorder


def _metadata(plan: Plan, registry: Any, executor: Any) -> dict[str, Any]:
    """The run row's metadata: versions, device, configuration, component identities."""
    settings = plan.settings

    plugin_versions, versions = _versions(registry.manager)
    return {
        "environment": fingerprint(settings.device),
        "harness_version": __version__,
        "git_commit": git_commit(),  # the tree that produced the results, if in a repository
        "registry_files": registry.files,
        "command": _command_line(),
        "plugin_versions": plugin_versions,
        "versions": versions,
        "datasets": {p.component.name: {"identity": p.component.obj.identity,
                                         "images": len(p.images), "limit": settings.limit,
                                         "names": [image.name for image in p.images]}
                     for p in plan.datasets},
        "device": _device_text(settings.device, executor.describe()),
        "execution": executor.describe(),
        "date": now_iso(),
        "anchor": "+".join(plan.anchor) if plan.anchor else None,
        "anchor_source": _anchor_source(plan),
        "conventions": CONVENTIONS,
        "config": {
            "suite": plan.suite.name if plan.suite is not None else None,
            "datasets": [p.component.name for p in plan.datasets],
            "codecs": [c.name for c in plan.codecs],
            "srs": [s.name for s in plan.srs],
            "qualities": {c.name: c.qualities for c in plan.codecs},
            "scale": settings.scale, "kernel": settings.kernel, "limit": settings.limit,
            "overwrite": settings.overwrite,
            "metrics": [name for name, _, _ in plan.metrics],
        },
        "components": {
            "codecs": {c.name: c.obj.identity for c in plan.codecs},
            "metrics": {name: identity for name, _, identity in plan.metrics},
        },
        "skipped": [s.__dict__ for s in plan.skipped],
    }


def _command_line() -> str:
    """How this run was started, for the HTML report's provenance."""
    if not sys.argv:
        return ""
    name = Path(sys.argv[0]).name
    name = "jcsr-bench" if name in ("main.py", "__main__.py") else name
    return shlex.join([name, *sys.argv[1:]])


def _device_text(device: str, execution: dict[str, Any]) -> str:
    """The report header's device line: where the units ran, with how many threads."""
    if execution["executor"] == "local":
        workers, threads = execution["workers"], execution["threads_per_worker"]
        if workers == 1:
            return f"{describe_device(device)}; local executor"
        return (f"{device}: local executor, {workers} worker processes x {threads} "
                f"thread{'s' if threads > 1 else ''}")
    workers, threads = execution["workers"], execution["threads_per_worker"]
    gpus = execution["gpus_per_worker"]
    return (f"{'cuda' if gpus else 'cpu'} on ray ({execution['ray_address']}): {workers} "
            f"workers x {threads} thread{'s' if threads > 1 else ''}"
            + (f", {gpus:g} GPU each" if gpus else ""))


def _anchor_source(plan: Plan) -> str | None:
    """Where the anchor came from, for the leaderboard's header: the suite or --anchor."""
    if plan.anchor is None:
        return None
    suite_anchor = getattr(plan.suite, "anchor", None)
    return "suite" if suite_anchor and tuple(suite_anchor) == plan.anchor else "--anchor"


def _versions(manager: Any) -> tuple[dict[str, str], dict[str, str]]:
    plugins = {"jcsr-bench": __version__}
    for info in manager.plugins(include_builtins=False):
        plugins[info.distribution or info.name] = info.version
    return plugins, versions()


def _report(plan: Plan, summary: RunSummary, states: dict, stopped: bool, stream: TextIO,
            started: float, registry: Any) -> RunSummary:
    """The folder's reports (all stored results, report.outputs), then the printed summary;
    report.html's images are recomputed by the same stages that scored them."""
    from jcsr_bench.report.outputs import write_reports
    from jcsr_bench.run.cache import Cache
    from jcsr_bench.run.recompute import Recompute

    def warn(message: str) -> None:
        print(f"note: report.html: {message}", file=stream)

    def recompute(dataset: str, name: str, runs: dict, meta: dict) -> Recompute:
        work = Recompute(registry, dataset, name, runs, meta, plan.settings.device, warn)
        if plan.settings.cache_root is not None:  # the run's own codec cache
            work.cache = Cache(plan.settings.cache_root)
        return work

    cells = plan.cells
    written = write_reports(summary.output, stream, f"jcsr-bench {__version__}",
                            recompute=recompute)
    summary.files, summary.reports = written.files, written.covers
    summary.exit_code = 1 if summary.failed or stopped else 0
    summary.elapsed_s = time.perf_counter() - started
    print_summary(summary.output, cells, summary, stream, stopped)
    return summary


__all__ = ["Failure", "RunSummary", "Skipped", "pixel_hash", "run"]
