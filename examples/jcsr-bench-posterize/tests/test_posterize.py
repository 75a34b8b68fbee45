import jcsr_posterize.plugin
from jcsr_bench import run_benchmark
from jcsr_bench.testing import check_codec, check_plugin, check_sr_model, plugin_manager
from jcsr_posterize.components import NearestSR, PosterizeCodec


def test_codec():
    check_codec(PosterizeCodec())  # types, round trip, determinism, bad input


def test_sr_model():
    check_sr_model(NearestSR())


def test_registers():
    assert check_plugin(jcsr_posterize.plugin) == {"codecs": ["posterize"], "sr": ["nearest"]}


def test_in_a_run(tmp_path):
    with plugin_manager(jcsr_posterize.plugin):  # registered without installing
        result = run_benchmark(datasets="samples", codecs="posterize", srs="nearest",
                               qualities=[2, 6], limit=1, output=tmp_path)
    assert result.exit_code == 0, result.failed
    psnr = {row["quality"]: row["values"]["psnr-rgb"] for row in result.rows}
    assert psnr[6] > psnr[2]  # more bits kept: closer to the original
