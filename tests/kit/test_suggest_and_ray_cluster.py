"""'Did you mean' (``kit.suggest``) and the Ray session's argument checks (``kit.ray_cluster``)."""

import builtins

import pytest

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.ray_cluster import INSTALL, RayCluster, import_ray
from jcsr_bench.kit.suggest import did_you_mean


def test_did_you_mean_suggests_close_names_or_lists_them_all():
    assert did_you_mean("bmsh", ["bmshj", "jpeg"]) == " Did you mean 'bmshj'?"
    assert did_you_mean("zzz", ["jpeg", "bmshj"]) == " Known: bmshj, jpeg."
    assert did_you_mean("x", []) == ""


def test_bad_ray_arguments_fail_before_ray_is_touched(monkeypatch):
    def no_ray(*a, **k):
        raise AssertionError("Ray must not be imported for a bad argument")

    monkeypatch.setattr("jcsr_bench.kit.ray_cluster.import_ray", no_ray)
    with pytest.raises(JcsrError, match="--gpus-per-worker must be >= 0"):
        RayCluster(workers=None, threads_per_worker=None, gpus_per_worker=-1, address=None)
    with pytest.raises(JcsrError, match="--workers"):
        RayCluster(workers=0, threads_per_worker=None, gpus_per_worker=0, address=None)


def test_missing_ray_names_the_install_command(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(JcsrError) as info:
        import_ray()
    assert str(info.value) == f"--executor ray needs Ray, which is not installed: {INSTALL}"
