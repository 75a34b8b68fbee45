"""The Ray executor (``run --executor ray``): work units as Ray tasks, results to the driver.

What travels: the run's context (codecs, SR models and metrics, with their weights
already loaded on the driver) is put in Ray's object store once and kept by each worker
process; each image's HR tensor is put once, its LR image is made by one task, and every
(codec, quality) unit is one task depending on both. Cached codec outputs go with their
unit. Workers return cell records and fresh codec outputs; the driver's recorder writes
the store and the cache. So workers need jcsr-bench (and any plugin) installed, but no
shared filesystem, dataset or weight file. A worker that dies loses only its in-flight
task, which Ray runs again (``max_retries``); a killed driver resumes like any run.
A unit whose worker keeps dying (a plugin that crashes the process) is split: each of its
SR models runs as a task of its own, once, so the healthy cells are computed and the
failed one names the model it was running.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

from jcsr_bench.kit.errors import one_line
from jcsr_bench.kit.ray_cluster import RayCluster
from jcsr_bench.run.execute import CachedOutput, lr_pair, pending_images
from jcsr_bench.run.plan import Plan
from jcsr_bench.run.workunit import (
    UnitContext,
    UnitResult,
    WorkUnit,
    evaluate,
    failed,
    hr_and_lr,
)

RETRIES = 3  # a unit whose worker died is run again this many times

_CONTEXTS: dict[str, UnitContext] = {}  # per worker process: the run's context, kept


def _set_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _lr_task(hr: Any, name: str, scale: int, kernel: str, threads: int
             ) -> tuple[Any, Any, str | None]:
    _set_threads(threads)
    try:
        hr_c, lr = hr_and_lr(hr, name, scale, kernel)
    except Exception as exc:
        return None, None, f"making the LR image: {one_line(exc)}"
    return hr_c, lr, None


def _unit_task(key: str, holder: list, unit: WorkUnit, pair: tuple, cached: Any,
               threads: int) -> UnitResult:
    _set_threads(threads)
    hr, lr, error = pair
    if error is not None:
        return failed(unit, error)
    context = _CONTEXTS.get(key)
    if context is None:
        import ray

        context = ray.get(holder[0])  # once per worker process and run
        _CONTEXTS.clear()
        _CONTEXTS[key] = context
    return evaluate(unit, context, hr, lr, cached)


def _load_weights(context: UnitContext, plan: Plan) -> None:
    """Load every model on the driver, so that the context carries its weights."""
    for codec in plan.codecs:
        load = getattr(codec.obj, "model", None)
        if callable(load):
            for quality in codec.qualities:
                load(quality)
    for model in context.models.values():
        _ = model.scale  # a weight-file model loads its network here


class RayExecutor(RayCluster):
    """Units as Ray tasks: ``workers`` at a time, each with its threads and GPU share."""

    def run(self, plan: Plan, context: UnitContext, cached: CachedOutput
            ) -> Iterator[UnitResult]:
        ray = self.ray
        context = dataclasses.replace(context, device="cuda" if self.gpus > 0 else "cpu",
                                      _moved={})
        _load_weights(context, plan)
        run = _RayRun(ray, uuid.uuid4().hex, [ray.put(context)], self.threads, self.gpus,
                      plan.settings.scale, plan.settings.kernel)
        flying: dict[Any, _Flying] = {}
        try:
            for dataset in plan.datasets:
                for image, hr, error in pending_images(plan, dataset):
                    units = plan.units(dataset, image)
                    if error is not None:
                        yield from (failed(unit, error) for unit in units)
                        continue
                    if callable(getattr(dataset.component.obj, "lr_image", None)):
                        pair = ray.put(lr_pair(plan, dataset, image, hr))  # its own LR file
                    else:
                        pair = run.lr(hr, image.name)
                    for unit in units:
                        while len(flying) >= self.workers:
                            yield from self._collect(flying, run)
                        held = cached(unit.codec_key)
                        flying[run.unit(unit, pair, held)] = _Flying(unit, pair, held)
            while flying:
                yield from self._collect(flying, run)
        finally:
            for ref in flying:  # stopped early (fail-fast, Ctrl-C): drop the rest
                ray.cancel(ref)

    def _collect(self, flying: dict[Any, _Flying], run: _RayRun) -> Iterator[UnitResult]:
        """Wait for one task, then yield the results of every finished one; a unit of
        several SR models whose worker died is split into one task per model."""
        ray = self.ray
        ready, rest = ray.wait(list(flying), num_returns=1)
        if rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for ref in ready:
            item = flying.pop(ref)
            unit = item.unit
            try:
                yield ray.get(ref)
            except Exception as exc:  # retries exhausted (worker lost) or a crash
                if len(unit.cells) > 1 and not item.split:
                    for cell in unit.cells:  # find the culprit, keep the healthy cells
                        alone = dataclasses.replace(unit, cells=[cell])
                        flying[run.unit(alone, item.pair, item.cached, split=True)] = \
                            _Flying(alone, item.pair, item.cached, split=True)
                    continue
                where = (f" while computing codec {unit.codec} q={unit.quality} with SR "
                         f"{unit.cells[0].sr} alone" if item.split else "")
                yield failed(unit, f"Ray task: the worker failed{where}: {one_line(exc)}")


@dataclasses.dataclass
class _Flying:
    """A submitted unit and what it was submitted with (to split it if it crashes)."""

    unit: WorkUnit
    pair: Any
    cached: Any
    split: bool = False


class _RayRun:
    """The tasks of one run: the LR task per image and the unit task per unit."""

    def __init__(self, ray: Any, key: str, holder: list, threads: int, gpus: float,
                 scale: int, kernel: str):
        self.ray, self.key, self.holder, self.threads = ray, key, holder, threads
        self.scale, self.kernel = scale, kernel
        self.lr_task = ray.remote(_lr_task).options(num_cpus=threads, max_retries=RETRIES)
        remote = ray.remote(_unit_task)
        self.unit_task = remote.options(num_cpus=threads, num_gpus=gpus, max_retries=RETRIES)
        self.split_task = remote.options(num_cpus=threads, num_gpus=gpus, max_retries=0)

    def lr(self, hr: Any, name: str) -> Any:
        """The reference to ``(mod-cropped HR, LR, error)``, made by one task."""
        return self.lr_task.remote(self.ray.put(hr), name, self.scale, self.kernel,
                                   self.threads)

    def unit(self, unit: WorkUnit, pair: Any, cached: Any, split: bool = False) -> Any:
        """The unit's task; a split one (one SR model of a crashed unit) runs once."""
        task = self.split_task if split else self.unit_task
        return task.remote(self.key, self.holder, unit, pair, cached, self.threads)
