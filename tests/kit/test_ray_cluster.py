"""RayCluster checks the cluster's resources before anything is submitted (issue 26.4)."""

from __future__ import annotations

import pytest

from jcsr_bench.kit import ray_cluster
from jcsr_bench.kit.errors import JcsrError


class FakeRay:
    """The few calls RayCluster makes, on a machine with 2 CPUs and no GPU."""

    def __init__(self, resources):
        self.resources, self.up = resources, False

    def is_initialized(self):
        return self.up

    def init(self, **kwargs):
        self.up = True

    def cluster_resources(self):
        return dict(self.resources)

    def shutdown(self):
        self.up = False


@pytest.fixture
def fake_ray(monkeypatch):
    ray = FakeRay({"CPU": 2.0})
    monkeypatch.setattr(ray_cluster, "import_ray", lambda: ray)
    return ray


def test_gpus_per_worker_without_a_gpu_fails_at_once_naming_what_is_there(fake_ray):
    with pytest.raises(JcsrError, match=r"--gpus-per-worker 0.5: the local Ray has 2 CPU\(s\) "
                                        r"and 0 GPU\(s\), so no task could ever start"):
        ray_cluster.RayCluster(workers=1, threads_per_worker=1, gpus_per_worker=0.5,
                               address=None)
    assert not fake_ray.up  # the Ray it started is shut down again


def test_more_threads_than_the_cluster_has_fails_at_once(fake_ray):
    fake_ray.up = True  # joined an existing session
    with pytest.raises(JcsrError, match=r"--threads-per-worker 8: .* 2 CPU\(s\)"):
        ray_cluster.RayCluster(workers=1, threads_per_worker=8, gpus_per_worker=0,
                               address="ray://head:10001")


def test_a_fitting_shape_is_accepted(fake_ray):
    fake_ray.resources["GPU"] = 1.0
    cluster = ray_cluster.RayCluster(workers=2, threads_per_worker=1, gpus_per_worker=0.5,
                                     address=None)
    assert (cluster.workers, cluster.threads, cluster.gpus) == (2, 1, 0.5)
