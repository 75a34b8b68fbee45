"""The plugin author's own tests, using jcsr-bench's conformance kit."""

import jcsr_posterize.plugin
from jcsr_bench.testing import check_codec, check_plugin, check_sr_model
from jcsr_posterize.components import NearestSR, PosterizeCodec


def test_posterize_codec_conforms():
    check_codec(PosterizeCodec())


def test_nearest_sr_conforms():
    check_sr_model(NearestSR())


def test_plugin_registers_its_types():
    assert check_plugin(jcsr_posterize.plugin) == {"codecs": ["posterize"], "sr": ["nearest"]}
