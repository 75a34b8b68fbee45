"""The Ray executor's task functions (``run.ray_executor``) and ``train-sr``'s result
unwrapping (``training.ray_jobs``), called in-process: no Ray cluster is started."""

import pytest
import torch

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.run import ray_executor
from jcsr_bench.run.workunit import UnitCell, WorkUnit
from jcsr_bench.testing import sample_image
from jcsr_bench.training import ray_jobs


def test_the_lr_task_makes_the_pair_or_reports_the_error():
    hr_c, lr, error = ray_executor._lr_task(sample_image(40, 48), "img", 4, "matlab", 1)
    assert error is None and tuple(lr.shape) == (3, 10, 12)
    assert torch.get_num_threads() == 1
    _, _, error = ray_executor._lr_task("not an image", "img", 4, "matlab", 1)
    assert error.startswith("making the LR image:")


def test_a_unit_whose_lr_failed_fails_without_touching_ray():
    unit = WorkUnit("d", "img", 0, "h", "c", 1, 0, "ck", [UnitCell("up", ("up", "c", "1"),
                                                                   "sk", "k")])
    result = ray_executor._unit_task("run", [], unit, (None, None, "LR failed"), None, 1)
    assert [(r.status, r.error) for r in result.records] == [("error", "LR failed")]


class _Failure(Exception):
    def __init__(self, cause):
        super().__init__("wrapped")
        self.cause = cause


class _FakeRay:
    def __init__(self, exc):
        self.exc = exc

    def get(self, ref):
        raise self.exc


def test_a_task_failing_with_our_error_reraises_it_with_its_own_message():
    with pytest.raises(JcsrError, match="^diverged$"):
        ray_jobs._result(_FakeRay(_Failure(JcsrError("diverged"))), "ref")
    with pytest.raises(_Failure):
        ray_jobs._result(_FakeRay(_Failure(ValueError("other"))), "ref")
