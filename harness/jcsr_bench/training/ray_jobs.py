"""``train-sr --executor ray``: one Ray task per (codec, quality), trained concurrently.

Each task runs the same ``fit`` as a local quality (same seeds: the same weights), with
``gpus_per_job`` of a GPU (``0.125``: eight qualities share one) or one CPU thread. The
driver writes each finished checkpoint into the trained-weights store as it arrives.
Ctrl-C on the driver cancels the tasks, which Ray delivers as SIGINT to each: ``fit``
saves its state and returns "interrupted", so ``--resume`` continues every quality
exactly. A task whose worker died is run again and resumes from its last saved state.
The training-pair cache and the resume states are files: the workers must see the
driver's cache folder (one machine, or a shared filesystem).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.ray_cluster import RayCluster

RETRIES = 2


def _fit_task(fit: Callable[..., Any], generator: Any, job: dict[str, Any],
              feature_extractor: Any, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    return fit(generator, **job, feature_extractor=feature_extractor, progress=False)


def fit_on_ray(fit: Callable[..., Any], jobs: dict[Any, dict[str, Any]], *, generator: Any,
               feature_extractor: Any, gpus_per_job: float, address: str | None,
               threads: int = 1) -> Iterator[tuple[Any, Any]]:
    """``(quality, fit's result)`` for each job (``fit`` keyword arguments) as it finishes;
    every job starts from its own copy of ``generator``."""
    executor = RayCluster(workers=None, threads_per_worker=threads,
                          gpus_per_worker=gpus_per_job, address=address)
    ray = executor.ray
    device = "cuda" if gpus_per_job > 0 else "cpu"
    task = ray.remote(_fit_task).options(num_cpus=threads, num_gpus=gpus_per_job,
                                         max_retries=RETRIES)
    start, extractor = ray.put(generator), ray.put(feature_extractor)
    flying = {task.remote(fit, start, {**job, "device": device}, extractor, threads): quality
              for quality, job in jobs.items()}
    try:
        while flying:
            ready, _ = ray.wait(list(flying), num_returns=1)
            for ref in ready:
                yield flying.pop(ref), _result(ray, ref)
    except KeyboardInterrupt:
        for ref in flying:  # SIGINT in each task: fit saves its state and returns
            ray.cancel(ref)
        for ref, quality in list(flying.items()):
            yield quality, _result(ray, ref)
        flying.clear()
    finally:
        for ref in flying:  # a failure elsewhere: stop the rest, their states saved
            ray.cancel(ref)
        executor.close()


def _result(ray: Any, ref: Any) -> Any:
    try:
        return ray.get(ref)
    except Exception as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, JcsrError):  # e.g. TrainingDiverged: its own message
            raise cause from None
        raise
