"""The latent contract in a run: a latent-consuming SR model gets the codec's latent, the
cache keeps it, and the planner refuses the model after a codec without one."""

import io

import pytest
import torch
from fakes import ENCODES, go, make_registry

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.results.store import load_rows
from jcsr_bench.run.cache import Cache, CodecOutput
from jcsr_bench.run.engine import run
from jcsr_bench.testing import check_codec, sample_image

EXTRA = """
codecs:
  fl: {type: fake-latent-codec, step: 8, qualities: [1, 2]}
sr:
  joint: {type: fake-latent-sr}
"""


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("JCSR_BENCH_CACHE", str(tmp_path / "cache"))
    registry = make_registry(tmp_path / "reg")
    extra = tmp_path / "reg" / "latent.yaml"
    extra.write_text(EXTRA)
    registry.add_file(extra)
    return registry


def test_fake_latent_codec_conforms():
    from fakes import FakeLatentCodec

    check_codec(FakeLatentCodec())


@pytest.mark.slow
def test_latent_consumer_gets_the_latent_and_the_cache_keeps_it(registry, tmp_path):
    ENCODES.clear()
    summary = go(registry, tmp_path, codecs=["fl"], srs=["joint", "up"],
                 workers=1)  # in-process: ENCODES counts its calls
    assert summary.exit_code == 0, summary.failed
    rows = {(r["image"], r["quality"], r["sr"]): r for r in load_rows(summary.db_path)}
    assert len(rows) == 12
    for (image, quality, sr), row in rows.items():
        if sr == "joint":  # its output is the decoded image's nearest upscale, + 1
            other = rows[(image, quality, "up")]
            assert row["digests"]["payload"] == other["digests"]["payload"]
            assert row["values"]["bits"] == other["values"]["bits"]
    assert sum(ENCODES.values()) == 6  # the codec ran once per image x quality
    entries = list((tmp_path / "cache" / "cells").rglob("latent.npy.z"))
    assert len(entries) == 6
    # a second run over the cache: no encode, same cells
    ENCODES.clear()
    again = go(registry, tmp_path, out="again", codecs=["fl"], srs=["joint"])
    assert again.exit_code == 0 and not ENCODES


@pytest.mark.slow
def test_a_cached_output_without_latent_gains_it_without_encoding(registry, tmp_path):
    assert go(registry, tmp_path, codecs=["fl"], srs=["up"]).exit_code == 0
    assert not list((tmp_path / "cache" / "cells").rglob("latent.npy.z"))
    ENCODES.clear()
    summary = go(registry, tmp_path, codecs=["fl"], srs=["joint"])
    assert summary.exit_code == 0, summary.failed
    assert not ENCODES  # the latent came from the cached payload
    assert len(list((tmp_path / "cache" / "cells").rglob("latent.npy.z"))) == 6


def test_cache_round_trips_a_latent_and_a_cached_output_gains_one(tmp_path):
    from fakes import FakeLatentCodec

    codec = FakeLatentCodec()
    image = sample_image(16, 24)
    payload = codec.encode(image, 2)
    latent = codec.decode_latent(payload)
    cache = Cache(tmp_path)
    cache.save_codec("k1", CodecOutput(payload, codec.decode(payload), 0.1, 0.2, latent))
    loaded = cache.load_codec("k1")
    assert torch.equal(loaded.latent.y, latent.y)
    assert (loaded.latent.size, loaded.latent.offset, loaded.latent.stride) == (
        latent.size, latent.offset, latent.stride)
    cache.save_codec("k2", CodecOutput(payload, codec.decode(payload), 0.1, 0.2))
    assert cache.load_codec("k2").latent is None


def test_plan_refuses_a_latent_consumer_after_a_codec_without_latent(registry, tmp_path):
    out = io.StringIO()
    summary = run(registry=registry, datasets=["tiny"], codecs=["fa", "fl"], srs=["joint"],
                  output=tmp_path / "out", dry_run=True, stream=out, progress=False,
                  device="cpu")
    text = out.getvalue()
    assert "  combination fa+joint: SR joint decodes from the codec's latent" in text
    assert "codec fa offers none (no decode_latent/synthesize)" in text
    assert summary.cells == 6  # fl+joint only
    with pytest.raises(JcsrError, match="no selected codec \\(fa\\) offers one"):
        run(registry=registry, datasets=["tiny"], codecs=["fa"], srs=["joint"],
            output=tmp_path / "out2", dry_run=True, stream=io.StringIO(), progress=False,
            device="cpu")
