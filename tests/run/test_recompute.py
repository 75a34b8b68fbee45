"""Recomputing stored cells (``jcsr_bench.run.recompute``) gives the images that were scored."""

from fakes import go, make_registry

from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.results.stored_cells import read_cells
from jcsr_bench.run.recompute import Recompute


def test_recomputed_outputs_score_what_the_store_holds_and_use_the_codec_cache(tmp_path):
    registry = make_registry(tmp_path / "reg")
    summary = go(registry, tmp_path, codecs=["fa"], srs=["up"], metrics=["psnr-rgb"],
                 cache_root=tmp_path / "cache")
    assert summary.exit_code == 0
    cells, runs, meta = read_cells(summary.output)
    warnings: list[str] = []
    mine = [c for c in cells if c.image == "img1"]
    work = Recompute(registry, "tiny", "img1", runs, meta, "cpu", warnings.append)
    work.cache.root = tmp_path / "cache"  # the run's codec cache
    for cell in mine:
        result, reference = work.output(cell)
        assert abs(psnr_rgb(reference, result) - cell.values["psnr-rgb"]) < 1e-9
    assert warnings == []
    assert work.codec_runs + work.cache_hits == len({c.codec_key for c in mine})
