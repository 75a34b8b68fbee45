"""The pillow codec: payloads are exactly the files Pillow writes; errors are clear."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.kit.errors import DataError, JcsrError, RegistryError
from jcsr_bench.testing import check_codec, sample_image
from jcsr_bench_plugins.codecs import pillow_codec
from jcsr_bench_plugins.codecs.pillow_codec import PillowCodec

FORMATS = ["JPEG", "WEBP", "AVIF", "JPEG2000"]


def psnr(a, b):
    mse = np.mean((a.numpy().astype(np.float64) - b.numpy().astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


def pillow_reference(image, fmt, **kwargs):
    """Independent reference: encode/decode with Pillow directly."""
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format=fmt, **kwargs)
    data = buffer.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return data, torch.from_numpy(decoded.copy()).permute(2, 0, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_matches_pillow(fmt):
    from skimage import data

    codec = PillowCodec(fmt)
    image = torch.from_numpy(data.astronaut()[40:88, 160:232].copy()).permute(2, 0, 1)
    pixels = 48 * 72
    sizes, quality = [], []
    for q in codec.qualities:
        payload = codec.encode(image, q)
        decoded = codec.decode(payload)
        assert decoded.dtype == torch.uint8 and decoded.shape == image.shape
        kwargs = ({"quality_mode": "dB", "quality_layers": [q], "irreversible": True, "mct": 1,
                   "no_jp2": True} if fmt == "JPEG2000" else {"quality": q})
        ref_bytes, ref_image = pillow_reference(image, fmt, **kwargs)
        assert payload == ref_bytes
        assert torch.equal(decoded, ref_image)
        sizes.append(8 * len(payload) / pixels)
        quality.append(psnr(image, decoded))
    # the ladder spans real rate points: top quality costs more and looks better
    assert sizes[-1] > 2 * sizes[0] and quality[-1] > quality[0] + 5


def test_ladders():
    assert PillowCodec("JPEG").qualities == list(range(5, 100, 5))
    assert PillowCodec("webp").qualities == list(range(5, 100, 5))
    assert PillowCodec("AVIF").qualities == list(range(10, 100, 10))
    assert PillowCodec("jp2").qualities == list(range(24, 45, 2))
    assert PillowCodec("JPEG", qualities=[10, 50]).qualities == [10, 50]


@pytest.mark.parametrize("fmt", FORMATS)
def test_conformance(fmt):
    check_codec(PillowCodec(fmt))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 2)])
def test_tiny_and_odd_images(fmt, size):
    codec = PillowCodec(fmt)
    image = sample_image(*size)
    for q in (codec.qualities[0], codec.qualities[-1]):
        assert codec.decode(codec.encode(image, q)).shape == image.shape


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_and_truncated_payloads(fmt):
    codec = PillowCodec(fmt)
    payload = codec.encode(sample_image(32, 40), codec.qualities[len(codec.qualities) // 2])
    for bad in (payload[: len(payload) // 2], payload[:10], b"", b"\x00not an image\xff" * 3):
        with pytest.raises(DataError, match=fmt if bad else "non-empty"):
            codec.decode(bad)
    other = PillowCodec("WEBP" if fmt != "WEBP" else "JPEG")
    with pytest.raises(DataError, match="another codec"):
        other.decode(payload)


def test_bad_configuration_and_quality(monkeypatch):
    codec = PillowCodec("JPEG")
    with pytest.raises(JcsrError, match=r"valid qualities: \[5, 10, 15"):
        codec.encode(sample_image(), 97)
    with pytest.raises(RegistryError, match="Did you mean 'WEBP'"):
        PillowCodec("WEBB")
    with pytest.raises(RegistryError, match="integer 0..100"):
        PillowCodec("JPEG", qualities=[150])
    with pytest.raises(RegistryError, match="quality"):
        PillowCodec("JPEG", options={"quality": 50})
    with pytest.raises(DataError, match="uint8"):
        codec.encode(sample_image().float(), 50)
    monkeypatch.setattr(pillow_codec.features, "check", lambda name: name != "avif")
    with pytest.raises(JcsrError, match="'avif' feature is missing"):
        PillowCodec("AVIF")


def test_identity():
    ids = {PillowCodec(f).identity for f in FORMATS}
    assert len(ids) == 4
    assert PillowCodec("JPEG").identity == PillowCodec("jpg").identity
    assert PillowCodec("JPEG").identity.startswith("pillow:jpeg:")
    assert PillowCodec("JPEG", options={"subsampling": 0}).identity != PillowCodec("JPEG").identity


def test_options_reach_the_encoder():
    image = sample_image(64, 64)
    plain = PillowCodec("JPEG").encode(image, 50)
    full_chroma = PillowCodec("JPEG", options={"subsampling": 0}).encode(image, 50)
    assert full_chroma == pillow_reference(image, "JPEG", quality=50, subsampling=0)[0]
    assert full_chroma != plain


def test_registry_instances():
    from jcsr_bench.plugin.manager import PluginManager
    from jcsr_bench.plugin.registry import load_registry

    registry = load_registry(manager=PluginManager(entry_points=False))
    for name, fmt in [("jpeg", "JPEG"), ("webp", "WEBP"), ("avif", "AVIF"),
                      ("jpeg2000", "JPEG2000")]:
        codec = registry.build("codecs", name)
        assert codec.format == fmt
        image = sample_image(16, 24)
        assert codec.decode(codec.encode(image, codec.qualities[0])).shape == image.shape


def test_png_is_lossless_at_every_level_and_byte_exact():
    codec = PillowCodec("PNG", qualities=[0, 6, 9])
    image = sample_image(33, 47)
    sizes = []
    for level in codec.qualities:
        payload = codec.encode(image, level)
        assert payload == pillow_reference(image, "PNG", compress_level=level)[0]
        assert torch.equal(codec.decode(payload), image)
        sizes.append(len(payload))
    assert sizes[0] > sizes[2]  # level 0 stores, level 9 compresses
    check_codec(codec)
    with pytest.raises(RegistryError, match="compress_level 0..9"):
        PillowCodec("PNG", qualities=[10])
