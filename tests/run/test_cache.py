"""The codec-output cache verifies entries against their stored digests (issue 26.9)."""

from __future__ import annotations

import json

import pytest
import torch

from jcsr_bench.kit.errors import CacheWarning
from jcsr_bench.run.cache import Cache, CodecOutput, encode_png
from jcsr_bench.testing import sample_image


def _stored(tmp_path):
    cache = Cache(tmp_path)
    output = CodecOutput(b"payload bytes", sample_image(16, 16), 0.1, 0.2)
    cache.save_codec("ab" * 16, output)
    return cache, cache.entry("ab" * 16), output


def test_intact_entry_is_served(tmp_path):
    cache, _, output = _stored(tmp_path)
    got = cache.load_codec("ab" * 16)
    assert got.payload == output.payload and torch.equal(got.decoded, output.decoded)


def test_decoded_image_swapped_for_a_black_one_is_recomputed_with_a_warning(tmp_path):
    cache, folder, output = _stored(tmp_path)
    (folder / "decoded.png").write_bytes(encode_png(torch.zeros_like(output.decoded)))
    with pytest.warns(CacheWarning, match=r"codec cache entry .* does not match its stored "
                                          r"digest.*recomputing"):
        assert cache.load_codec("ab" * 16) is None  # scored 5.18 dB instead of 22.56 before


def test_same_length_payload_change_is_recomputed(tmp_path):
    cache, folder, _ = _stored(tmp_path)
    (folder / "payload.bin").write_bytes(b"PAYLOAD BYTES")
    with pytest.warns(CacheWarning):
        assert cache.load_codec("ab" * 16) is None


def test_entry_without_digests_is_recomputed_quietly(tmp_path, recwarn):
    cache, folder, _ = _stored(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["payload_sha256"], meta["decoded_hash"]
    (folder / "meta.json").write_text(json.dumps(meta))
    assert cache.load_codec("ab" * 16) is None and not recwarn.list
