"""The local executor and its helpers (``jcsr_bench.run.execute``), on a real plan."""

from pathlib import Path

from fakes import make_registry

from jcsr_bench.run.execute import LocalExecutor, lr_pair, pending_images
from jcsr_bench.run.plan import Settings, make_plan


def _plan(tmp_path: Path):
    registry = make_registry(tmp_path / "reg")
    settings = Settings(4, "matlab", None, "cpu", tmp_path / "out", "missing", False,
                        tmp_path / "cache")
    return make_plan(registry, settings, suite=None,
                     lists={"datasets": ["tiny"], "codecs": ["fa"], "sr": ["up"]},
                     qualities=None, anchor=None, metrics=["psnr-rgb"], sr_options={},
                     train=None, fetch=False)


def test_pending_images_yields_every_image_with_work_left(tmp_path):
    plan = _plan(tmp_path)
    (dataset,) = plan.datasets
    got = list(pending_images(plan, dataset))
    assert [image.name for image, _, _ in got] == ["img0", "img1", "img2"]
    assert all(hr is not None and error is None for _, hr, error in got)


def test_lr_pair_reports_a_failure_instead_of_raising(tmp_path):
    plan = _plan(tmp_path)
    (dataset,) = plan.datasets
    image, hr, _ = next(pending_images(plan, dataset))
    hr_c, lr, error = lr_pair(plan, dataset, image, hr)
    assert error is None and lr.shape[-1] * 4 == hr_c.shape[-1]
    assert lr_pair(plan, dataset, image, "not an image")[2].startswith("making the LR image:")


def test_the_local_executor_describes_itself_and_runs_every_unit(tmp_path):
    from jcsr_bench.run.engine import run

    executor = LocalExecutor(threads=1)
    assert executor.describe() == {"executor": "local", "workers": 1, "threads_per_worker": 1}
    summary = run(registry=make_registry(tmp_path / "reg2"), datasets=["tiny"], codecs=["fa"],
                  srs=["up"], output=tmp_path / "o", progress=False, device="cpu",
                  metrics=["psnr-rgb"], threads=1)
    assert summary.exit_code == 0 and summary.computed == 3 * 2  # 3 images x 2 qualities
    assert summary.execution["executor"] == "local"
