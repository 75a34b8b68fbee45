"""The work unit (``jcsr_bench.run.workunit``): one (image, codec, quality), codec once."""

import torch
from fakes import FakeCodec, FakeSR

from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.run.cache import CodecOutput
from jcsr_bench.run.workunit import (
    UnitCell,
    UnitContext,
    WorkUnit,
    evaluate,
    failed,
    hr_and_lr,
    output_digests,
)
from jcsr_bench.testing import sample_image


class PSNR:
    name, higher_is_better = "psnr-rgb", True

    def compute(self, reference, test):
        return psnr_rgb(reference, test)


class CountingCodec(FakeCodec):
    calls = 0

    def encode(self, image, quality):
        CountingCodec.calls += 1
        return super().encode(image, quality)


def _unit(srs=("up", "up2")):
    cells = [UnitCell(sr, (sr, "c", "1"), f"sr-key-{sr}", f"cell-{sr}") for sr in srs]
    return WorkUnit("d", "img", 0, "hash", "c", 1, 0, "codec-key", cells)


def _context(codec=None, models=None):
    models = models or {("up", "c", "1"): FakeSR(), ("up2", "c", "1"): FakeSR(shift=2)}
    return UnitContext(4, "matlab", "cpu", {"c": codec or CountingCodec()}, models,
                       [("psnr-rgb", PSNR(), "psnr-id")])


def test_the_codec_runs_once_whatever_the_number_of_sr_models():
    CountingCodec.calls = 0
    hr, lr = hr_and_lr(sample_image(40, 48), "img", 4, "matlab")
    assert tuple(hr.shape) == (3, 40, 48) and tuple(lr.shape) == (3, 10, 12)
    result = evaluate(_unit(), _context(), hr, lr)
    assert CountingCodec.calls == 1 and result.codec_output is not None
    assert not result.cache_hit
    assert [r.sr for r in result.records] == ["up", "up2"]
    assert all(r.status == "ok" and r.values["bpp"] > 0 for r in result.records)
    assert result.records[0].values["psnr-rgb"] != result.records[1].values["psnr-rgb"]


def test_a_cached_codec_output_is_used_instead_of_encoding():
    CountingCodec.calls = 0
    hr, lr = hr_and_lr(sample_image(40, 48), "img", 4, "matlab")
    fresh = evaluate(_unit(), _context(), hr, lr).codec_output
    again = evaluate(_unit(), _context(), hr, lr, cached=fresh)
    assert CountingCodec.calls == 1 and again.cache_hit and again.codec_output is None
    assert [r.values["bits"] for r in again.records] == [8 * len(fresh.payload)] * 2


def test_a_failing_sr_model_fails_only_its_own_cell():
    class Broken(FakeSR):
        def upscale(self, image):
            raise RuntimeError("boom")

    hr, lr = hr_and_lr(sample_image(40, 48), "img", 4, "matlab")
    models = {("up", "c", "1"): FakeSR(), ("up2", "c", "1"): Broken()}
    records = evaluate(_unit(), _context(models=models), hr, lr).records
    assert records[0].status == "ok"
    assert records[1].status == "error" and records[1].error == "SR up2: RuntimeError: boom"


def test_failed_marks_every_cell_with_the_error():
    result = failed(_unit(), "image img: unreadable")
    assert [(r.status, r.error) for r in result.records] == [("error", "image img: unreadable")] * 2


def test_output_digests_change_with_the_content():
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    other = image.clone()
    other[0, 0, 0] = 1
    a = output_digests(b"x", image, image)
    assert a == output_digests(b"x", image.clone(), image.clone())
    assert a["output"] != output_digests(b"x", image, other)["output"]
    assert a["payload"] != output_digests(b"y", image, image)["payload"]


def test_a_codec_returning_the_wrong_size_fails_the_unit():
    class Cropping(FakeCodec):
        def decode(self, data):
            return super().decode(data)[:, :-1]

    hr, lr = hr_and_lr(sample_image(40, 48), "img", 4, "matlab")
    records = evaluate(_unit(), _context(codec=Cropping()), hr, lr).records
    assert all(r.status == "error" and r.error.startswith("codec c:") for r in records)


def test_a_cached_output_of_another_size_is_not_used():
    CountingCodec.calls = 0
    hr, lr = hr_and_lr(sample_image(40, 48), "img", 4, "matlab")
    stale = CodecOutput(b"x", torch.zeros(3, 5, 5, dtype=torch.uint8), 0.0, 0.0)
    result = evaluate(_unit(), _context(), hr, lr, cached=stale)
    assert CountingCodec.calls == 1 and not result.cache_hit
