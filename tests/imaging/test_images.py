"""Image loading: every normalisation case, with files built in the test."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.imaging.images import (
    ImageWarning,
    check_image,
    from_numpy,
    load_image,
    save_image,
    to_numpy,
    to_pil,
)
from jcsr_bench.kit.errors import DataError


def _rgb(h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png16(path, array: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour)."""
    h, w, c = array.shape
    color_type = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def _hwc(t: torch.Tensor) -> np.ndarray:
    assert t.dtype == torch.uint8 and t.ndim == 3 and t.shape[0] == 3
    return t.permute(1, 2, 0).numpy()


def test_rgb_png_roundtrip(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.png")
    np.testing.assert_array_equal(_hwc(load_image(tmp_path / "a.png")), a)


def test_gray_becomes_rgb(tmp_path):
    g = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    Image.fromarray(g).save(tmp_path / "g.png")
    out = _hwc(load_image(tmp_path / "g.png"))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_bilevel_becomes_rgb(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert("1").save(
        tmp_path / "b.png")
    out = _hwc(load_image(tmp_path / "b.png"))
    np.testing.assert_array_equal(out[:, :, 1], [[0, 255], [255, 0]])


def test_rgba_composited_on_white_with_warning(tmp_path):
    rgba = np.array([[[10, 20, 30, 255], [200, 100, 0, 0], [0, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "t.png")
    with pytest.warns(ImageWarning, match="t.png.*white"):
        out = _hwc(load_image(tmp_path / "t.png"))
    # opaque keeps its colour; transparent -> white; black at a=128: 255*127/255 = 127
    np.testing.assert_array_equal(out[0], [[10, 20, 30], [255, 255, 255], [127, 127, 127]])


def test_opaque_alpha_dropped_silently(tmp_path, recwarn):
    a = _rgb()
    rgba = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "o.png")
    np.testing.assert_array_equal(_hwc(load_image(tmp_path / "o.png")), a)
    assert not [w for w in recwarn if issubclass(w.category, ImageWarning)]


def test_gray_alpha(tmp_path):
    la = Image.fromarray(np.array([[50, 50]], dtype=np.uint8)).convert("LA")
    la.putalpha(Image.fromarray(np.array([[255, 0]], dtype=np.uint8)))
    la.save(tmp_path / "la.png")
    with pytest.warns(ImageWarning):
        out = _hwc(load_image(tmp_path / "la.png"))
    np.testing.assert_array_equal(out[0], [[50, 50, 50], [255, 255, 255]])


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (256 * 3 - 9))
    p.putdata([0, 1, 2])
    p.save(tmp_path / "p.png", transparency=1)
    with pytest.warns(ImageWarning):
        out = _hwc(load_image(tmp_path / "p.png"))
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [255, 255, 255], [0, 255, 0]])


def test_palette_without_transparency(tmp_path):
    p = Image.new("P", (2, 1))
    p.putpalette([1, 2, 3, 4, 5, 6] + [0] * (256 * 3 - 6))
    p.putdata([1, 0])
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(_hwc(load_image(tmp_path / "p.png"))[0], [[4, 5, 6], [1, 2, 3]])


def test_16bit_gray(tmp_path):
    v = np.array([[0, 65535, 100 * 257, 0x80FF]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = _hwc(load_image(tmp_path / "g16.png"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 255, 100, 0x80])  # high byte
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])


def test_16bit_rgb_and_gray_agree(tmp_path):
    v = np.array([[[0, 65535, 0x80FF], [25700, 7 * 257, 1]]], dtype=np.uint16)
    _png16(tmp_path / "c16.png", v)
    np.testing.assert_array_equal(_hwc(load_image(tmp_path / "c16.png")), v >> 8)
    _png16(tmp_path / "g16.png", v[:, :, :1])
    np.testing.assert_array_equal(_hwc(load_image(tmp_path / "g16.png"))[:, :, 0], v[:, :, 0] >> 8)


def test_exif_orientation_applied(tmp_path):
    a = _rgb(2, 3)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    im.save(tmp_path / "r.png", exif=exif.tobytes())
    out = _hwc(load_image(tmp_path / "r.png"))
    np.testing.assert_array_equal(out, np.rot90(a, k=-1))  # clockwise
    exif[0x0112] = 3  # 180 degrees
    im.save(tmp_path / "r3.png", exif=exif.tobytes())
    np.testing.assert_array_equal(_hwc(load_image(tmp_path / "r3.png")), a[::-1, ::-1])


def test_cmyk_converted(tmp_path):
    cmyk = np.array([[[255, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 255], [0, 255, 255, 0]]],
                    dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    assert Image.open(tmp_path / "c.tif").mode == "CMYK"
    out = _hwc(load_image(tmp_path / "c.tif"))
    np.testing.assert_array_equal(out[0], [[0, 255, 255], [255, 255, 255], [0, 0, 0],
                                           [255, 0, 0]])


def test_float_image_refused(tmp_path):
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(DataError, match="f.tif.*float"):
        load_image(tmp_path / "f.tif")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_names_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(_rgb(64, 64)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"cut.{fmt.lower()}.*(truncated|corrupt)"):
        load_image(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, not pixels")
    with pytest.raises(DataError, match="notes.png.*not an image"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.png.*not found"):
        load_image(tmp_path / "nope.png")


def test_first_frame_of_animation(tmp_path):
    frames = [Image.new("RGB", (2, 2), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    out = _hwc(load_image(tmp_path / "a.gif"))
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


def test_helpers_roundtrip(tmp_path):
    a = _rgb()
    t = from_numpy(a)
    assert t.shape == (3, 6, 5) and t.dtype == torch.uint8
    np.testing.assert_array_equal(to_numpy(t), a)
    np.testing.assert_array_equal(np.asarray(to_pil(t)), a)
    np.testing.assert_array_equal(to_numpy(from_numpy(a[:, :, 0])), np.repeat(a[:, :, :1], 3, 2))
    save_image(t, tmp_path / "sub" / "x.png")
    assert torch.equal(load_image(tmp_path / "sub" / "x.png"), t)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]  # no temp left
    with pytest.raises(DataError, match="expected torch.uint8"):
        check_image(t.float())
    with pytest.raises(DataError, match="got ndarray"):
        check_image(a)
    with pytest.raises(DataError, match="expected \\[3, 4, 5\\]"):
        check_image(t, shape=(3, 4, 5))


def test_tiny_images_load_without_torchs_non_writable_warning(tmp_path):
    """torch warns once per process, so a fresh one: every size must load silently."""
    import subprocess
    import sys

    code = ("import warnings, sys\nfrom PIL import Image\n"
            "from jcsr_bench.imaging.images import load_image\n"
            "warnings.simplefilter('error')\n"
            "for size in [(1, 1), (1, 5), (5, 1), (2, 2)]:\n"
            "    Image.new('RGB', size, (1, 2, 3)).save(sys.argv[1])\n"
            "    assert load_image(sys.argv[1]).shape == (3, size[1], size[0])\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.png")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "not writable" not in done.stderr, done.stderr
