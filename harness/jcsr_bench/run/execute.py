"""Executors: run a plan's work units and hand back their results as they finish.

An executor loads each pending image on the driver (datasets are read where the run
was started), makes its LR image once and runs the image's work units
(``jcsr_bench.run.workunit``). It never writes: the driver's recorder stores what it yields.
:class:`LocalExecutor` runs in this process (``--executor local``); the Ray executor
(``jcsr_bench.run.ray_executor``) spreads the units over Ray workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from jcsr_bench.imaging.images import pixel_hash
from jcsr_bench.kit.disk import stop_on_storage_error
from jcsr_bench.kit.errors import one_line
from jcsr_bench.run.plan import DatasetPlan, ImagePlan, Plan, iterate
from jcsr_bench.run.workunit import UnitContext, UnitResult, evaluate, failed, hr_and_lr

CachedOutput = Callable[[str], Any]  # codec key -> CodecOutput or None


class Executor(Protocol):
    """Runs work units; yields each :class:`UnitResult` as soon as it is known."""

    def run(self, plan: Plan, context: UnitContext, cached: CachedOutput
            ) -> Iterator[UnitResult]: ...

    def describe(self) -> dict[str, Any]: ...


def pending_images(plan: Plan, dataset: DatasetPlan
                   ) -> Iterator[tuple[ImagePlan, Any, str | None]]:
    """``(image plan, HR tensor or None, error or None)`` for the images with work left."""
    pending = {img.index: img for img in dataset.images if img.pending()}
    if not pending:
        return
    source = dataset.component.obj
    if dataset.by_name:
        for image in pending.values():
            try:
                yield image, source.load(image.name), None
            except Exception as exc:
                yield image, None, f"loading image: {one_line(exc)}"
        return
    seen = set()
    try:
        for i, (name, hr) in enumerate(iterate(source, plan.settings.limit)):
            image = pending.get(i)
            if image is None:
                continue
            seen.add(i)
            if str(name) != image.name or pixel_hash(hr) != image.hash:
                yield image, None, (f"image {name!r} changed since planning (dataset "
                                    "order or content is not stable)")
            else:
                yield image, hr, None
    except Exception as exc:
        error = f"reading dataset {dataset.component.name}: {one_line(exc)}"
    else:
        error = "image missing from the dataset since planning"
    for i, image in pending.items():
        if i not in seen:
            yield image, None, error


def lr_pair(plan: Plan, dataset: DatasetPlan, image: ImagePlan, hr: Any
            ) -> tuple[Any, Any, str | None]:
    """``(mod-cropped HR, LR, None)``, or ``(None, None, error)``."""
    try:
        hr_c, lr = hr_and_lr(hr, image.name, plan.settings.scale, plan.settings.kernel,
                           dataset.component.obj)
    except Exception as exc:
        stop_on_storage_error(exc)  # a full LR cache stops the run, not every cell
        return None, None, f"making the LR image: {one_line(exc)}"
    return hr_c, lr, None


class LocalExecutor:
    """Every unit in this process, image by image, in plan order."""

    def __init__(self, threads: int):
        self.threads = threads  # torch intra-op threads (the engine sets them)

    def describe(self) -> dict[str, Any]:
        return {"executor": "local", "workers": 1, "threads_per_worker": self.threads}

    def run(self, plan: Plan, context: UnitContext, cached: CachedOutput
            ) -> Iterator[UnitResult]:
        for dataset in plan.datasets:
            for image, hr, error in pending_images(plan, dataset):
                units = plan.units(dataset, image)
                hr_c = lr = None
                if error is None:
                    hr_c, lr, error = lr_pair(plan, dataset, image, hr)
                for unit in units:
                    if error is not None:
                        yield failed(unit, error)
                    else:
                        yield evaluate(unit, context, hr_c, lr, cached(unit.codec_key))
