"""A Ray session: join a cluster (``--ray-address``) or start a local one, and close it.

Shared by the evaluation's Ray executor and ``train-sr --executor ray``; neither needs to
know the other. Ray is optional: importing this module does not import it.
"""

from __future__ import annotations

from typing import Any

from jcsr_bench.kit.devices import check_threads, usable_cores
from jcsr_bench.kit.errors import JcsrError, one_line

INSTALL = 'pip install "jcsr-bench[ray]"'


def import_ray() -> Any:
    """The ``ray`` module, or a clear error naming what to install."""
    try:
        import ray
    except ImportError as exc:
        raise JcsrError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from exc
    return ray


class RayCluster:
    """Ray, connected: ``workers`` tasks at a time with ``threads`` each, GPU share ``gpus``."""

    def __init__(self, *, workers: int | None, threads_per_worker: int | None,
                 gpus_per_worker: float, address: str | None):
        check_threads(workers, "--workers")
        check_threads(threads_per_worker, "--threads-per-worker")
        if gpus_per_worker < 0:
            raise JcsrError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
        self.ray = import_ray()
        self.address = address
        self.gpus = float(gpus_per_worker)
        self.started = False
        self.workers, self.threads = self._connect(workers, threads_per_worker)
        try:
            self._check_resources()
        except JcsrError:
            self.close()
            raise

    def _check_resources(self) -> None:
        """Refuse a task shape the cluster can never schedule: Ray would queue it forever
        (``--gpus-per-worker 0.5`` on a machine without a GPU hung silently)."""
        total = self.ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray"
        have = f"{where} has {cpus:g} CPU(s) and {gpus:g} GPU(s)"
        if self.gpus > 0 and gpus < self.gpus:
            raise JcsrError(f"--gpus-per-worker {self.gpus:g}: {have}, so no task could ever "
                            "start; use --gpus-per-worker 0 (CPU) or a cluster with GPUs")
        if cpus < self.threads:
            raise JcsrError(f"--threads-per-worker {self.threads}: {have}, so no task could "
                            f"ever start; use at most {cpus:g} threads per worker")

    def _connect(self, workers: int | None, threads: int | None) -> tuple[int, int]:
        """Join ``address`` (or the Ray session already open), else start a local Ray.

        A local Ray gets ``workers x threads`` CPUs (default: every usable core, one
        thread per worker); on a cluster the defaults share its CPUs out the same way.
        """
        ray = self.ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            if self.address:
                try:
                    ray.init(address=self.address, **options)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise JcsrError(f"cannot join the Ray cluster at {self.address}: "
                                    f"{one_line(exc)} (is `ray start --head` running there?)"
                                    ) from exc
            else:
                cores = usable_cores()
                threads = threads or max(1, cores // (workers or cores))
                ray.init(address="local",  # a new instance, never another one found here
                         num_cpus=(workers or max(1, cores // threads)) * threads, **options)
            self.started = True
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        threads = threads or max(1, cpus // (workers or cpus))
        return workers or max(1, cpus // threads), threads

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "workers": self.workers, "threads_per_worker": self.threads,
                "gpus_per_worker": self.gpus, "ray_address": self.address or "local"}

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
