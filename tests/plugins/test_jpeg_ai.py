"""The JPEG AI metric set: each metric against a second implementation on real photos.

Cases: centre 256x256 crops of two bundled photos (skimage astronaut, coffee) under JPEG
at qualities 10/30/70 and WebP at quality 30 (Pillow). Tolerances are the ones
docs/metrics.md states; the differences seen are far below them.
"""

from __future__ import annotations

import io
import math
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.components import NotApplicable
from jcsr_bench.imaging import color
from jcsr_bench.imaging.quality import prepare, psnr_y
from jcsr_bench_plugins.metrics import jpeg_ai

piq = pytest.importorskip("piq")


def _crop(img: np.ndarray, size: int = 256) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def _codec(img: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


def _cases(size: int = 256):
    from skimage import data

    out = []
    for name in ("astronaut", "coffee"):
        ref = _crop(getattr(data, name)(), size)
        for fmt, q in (("JPEG", 10), ("JPEG", 30), ("JPEG", 70), ("WEBP", 30)):
            out.append((f"{name}-{fmt}{q}", ref, _codec(ref, fmt, q)))
    return out


CASES = _cases()


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


def _score(metric, ref: np.ndarray, test: np.ndarray) -> float:
    return metric.compute(prepare(_t(ref)), prepare(_t(test)))


def _matrix_yuv(rgb8: np.ndarray) -> np.ndarray:
    """Independent BT.709 derivation: the Kr/Kb matrix of ITU-R BT.709, full range,
    float64 numpy, the framework's 10-bit rounding; ``[3, H, W]`` in [0, 1]."""
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    m = np.array([[kr, kg, kb],
                  [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
                  [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)]])
    rgb = np.round(rgb8 / 255.0 * 1023) / 1023
    yuv = np.einsum("ij,hwj->ihw", m, rgb) + np.array([0, 0.5, 0.5])[:, None, None]
    return np.round(yuv.clip(0, 1) * 1023) / 1023


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ------------------------------------------------------------------ colour, PSNR, MS-SSIM

def test_yuv709_matches_an_independent_matrix_derivation():
    for _, ref, _ in CASES[:1] + CASES[4:5]:
        ours = color.codes(color.yuv709(_t(ref))).numpy()
        theirs = np.round(_matrix_yuv(ref) * 1023)
        diff = np.abs(ours - theirs)
        assert diff.max() <= 1  # a sample exactly at .5 LSB may round either way
        assert (diff > 0).mean() < 1e-3


def test_psnr709_matches_torchmetrics_on_independent_planes():
    from torchmetrics.functional.image import peak_signal_noise_ratio

    for name, ref, test in CASES:
        a, b = _matrix_yuv(ref) * 1023, _matrix_yuv(test) * 1023
        for i, cls in enumerate((jpeg_ai.PSNRY709, jpeg_ai.PSNRU709, jpeg_ai.PSNRV709)):
            ours = _score(cls(), ref, test)
            theirs = peak_signal_noise_ratio(torch.from_numpy(b[i]), torch.from_numpy(a[i]),
                                             data_range=1023.0).item()
            assert abs(ours - theirs) < 1e-3, (name, cls.__name__, ours, theirs)


def test_psnr_y709_differs_from_the_sr_papers_bt601_psnr_y():
    """The JPEG AI convention (BT.709 full range, 10 bit) is not BT.601 studio luma."""
    _, ref, test = CASES[0]
    bt709 = _score(jpeg_ai.PSNRY709(), ref, test)
    bt601 = psnr_y(_t(ref), _t(test), border=0)
    assert abs(bt709 - bt601) > 0.05


def test_identical_images_give_infinite_psnr709():
    _, ref, _ = CASES[0]
    assert _score(jpeg_ai.PSNRY709(), ref, ref) == math.inf


def test_ms_ssim_y_matches_piq_and_10_bit_differs_from_8_bit():
    import pytorch_msssim

    for name, ref, test in CASES:
        ours = _score(jpeg_ai.MSSSIMY(), ref, test)
        a, b = color.yuv709(_t(ref))[0], color.yuv709(_t(test))[0]
        theirs = piq.multi_scale_ssim(b[None, None], a[None, None], data_range=1.0).item()
        assert _rel(ours, theirs) < 2e-5, (name, ours, theirs)
    a8 = (a * 255).round()[None, None]
    b8 = (b * 255).round()[None, None]
    eight_bit = pytorch_msssim.ms_ssim(a8, b8, data_range=255).item()
    assert abs(ours - eight_bit) > 1e-5  # the framework's 10 bits are not 8


# ------------------------------------------------------------------ VIF, FSIM, NLPD, IW-SSIM

@pytest.fixture(scope="module")
def iqa():
    """IQA_pytorch 0.1 (the JPEG AI framework's own library), shimmed for torch >= 1.8."""
    iqa = pytest.importorskip("IQA_pytorch")
    if not hasattr(torch, "rfft"):  # FSIM calls the pre-1.8 FFT API
        def rfft(x, d, onesided=True):
            return torch.view_as_real(torch.fft.rfft2(x) if onesided else torch.fft.fft2(x))

        def ifft(x, d):
            return torch.view_as_real(torch.fft.ifft2(torch.view_as_complex(x.contiguous())))

        torch.rfft, torch.ifft = rfft, ifft
    return iqa


def _y(img: np.ndarray) -> torch.Tensor:
    return color.yuv709(_t(img))[0][None, None]


def test_vif_matches_iqa_pytorch_vifs(iqa):
    vifs = iqa.VIFs(channels=1)
    for name, ref, test in CASES:
        ours = _score(jpeg_ai.VIF(), ref, test)
        theirs = vifs(_y(test), _y(ref), as_loss=False).item()
        assert _rel(ours, theirs) < 5e-5, (name, ours, theirs)


def test_fsim_matches_iqa_pytorch_fsim(iqa):
    fsim = iqa.FSIM(channels=3)
    for name, ref, test in CASES[:3]:
        ours = _score(jpeg_ai.FSIM(), ref, test)
        theirs = fsim(color.rgb10(_t(test))[None], color.rgb10(_t(ref))[None],
                      as_loss=False).item()
        assert _rel(ours, theirs) < 5e-5, (name, ours, theirs)


def test_nlpd_matches_iqa_pytorch_nlpd(iqa):
    nlpd = iqa.NLPD(channels=1)
    for name, ref, test in CASES:
        ours = _score(jpeg_ai.NLPD(), ref, test)
        theirs = nlpd(_y(test), _y(ref), as_loss=False).item()
        assert _rel(ours, theirs) < 1e-5, (name, ours, theirs)
    assert jpeg_ai.NLPD.higher_is_better is False


#: IW-SSIM of IW_SSIM_PyTorch (Jack-guo-xy/Python-IW-SSIM, the JPEG AI framework's
#: IW-SSIM; GitHub only, so its values on these JPEG cases are pinned here).
IW_SSIM_PYTORCH = {"astronaut-JPEG10": 0.956613, "astronaut-JPEG30": 0.987069,
                   "astronaut-JPEG70": 0.995344, "coffee-JPEG10": 0.946843,
                   "coffee-JPEG30": 0.984170, "coffee-JPEG70": 0.994170}


def test_iw_ssim_matches_iw_ssim_pytorch_values():
    for name, ref, test in CASES:
        if name in IW_SSIM_PYTORCH:
            ours = _score(jpeg_ai.IWSSIM(), ref, test)
            assert _rel(ours, IW_SSIM_PYTORCH[name]) < 2e-5, (name, ours)


def test_iw_ssim_is_na_on_small_and_flat_images():
    _, ref, test = CASES[0]
    with pytest.raises(NotApplicable, match="161"):
        _score(jpeg_ai.IWSSIM(), ref[:128, :128], test[:128, :128])
    flat = np.full((176, 176, 3), 128, np.uint8)
    with pytest.raises(NotApplicable, match="flat"):
        _score(jpeg_ai.IWSSIM(), flat, flat)


@pytest.mark.parametrize("metric, side", [(jpeg_ai.MSSSIMY, 160), (jpeg_ai.NLPD, 48),
                                          (jpeg_ai.VMAF, 16), (jpeg_ai.VIF, 40)])
def test_too_small_images_are_na_with_the_reason(metric, side):
    _, ref, test = CASES[0]
    with pytest.raises(NotApplicable, match="px"):
        _score(metric(), ref[:side, :side], test[:side, :side])


# ------------------------------------------------------------------ PSNR-HVS

_CSF = np.array([
    [1.608443, 2.339554, 2.573509, 1.608443, 1.072295, 0.643377, 0.504610, 0.421887],
    [2.144591, 2.144591, 1.838221, 1.354478, 0.989811, 0.443708, 0.428918, 0.467911],
    [1.838221, 1.979622, 1.608443, 1.072295, 0.643377, 0.451493, 0.372972, 0.459555],
    [1.838221, 1.513829, 1.169777, 0.887417, 0.504610, 0.295806, 0.321689, 0.415082],
    [1.429727, 1.169777, 0.695543, 0.459555, 0.378457, 0.236102, 0.249855, 0.334222],
    [1.072295, 0.735288, 0.467911, 0.402111, 0.317717, 0.247453, 0.227744, 0.279729],
    [0.525206, 0.402111, 0.329937, 0.295806, 0.249855, 0.212687, 0.214459, 0.254803],
    [0.357432, 0.279729, 0.270896, 0.262603, 0.229778, 0.257351, 0.249855, 0.259950]])
_MASK = np.array([
    [0.390625, 0.826446, 1.000000, 0.390625, 0.173611, 0.062500, 0.038447, 0.026874],
    [0.694444, 0.694444, 0.510204, 0.277008, 0.147929, 0.029727, 0.027778, 0.033058],
    [0.510204, 0.591716, 0.390625, 0.173611, 0.062500, 0.030779, 0.021004, 0.031888],
    [0.510204, 0.346021, 0.206612, 0.118906, 0.038447, 0.013212, 0.015625, 0.026015],
    [0.308642, 0.206612, 0.073046, 0.031888, 0.021626, 0.008417, 0.009426, 0.016866],
    [0.173611, 0.081633, 0.033058, 0.024414, 0.015242, 0.009246, 0.007831, 0.011815],
    [0.041649, 0.024414, 0.016437, 0.013212, 0.009426, 0.006830, 0.006944, 0.009803],
    [0.019290, 0.011815, 0.011080, 0.010412, 0.007972, 0.010000, 0.009426, 0.010203]])


def _psnrhvsm_m_file(img1: np.ndarray, img2: np.ndarray) -> tuple[float, float]:
    """Ponomarenko's psnrhvsm.m, block by block (input 0..255): (PSNR-HVS, PSNR-HVS-M)."""
    from scipy.fft import dctn

    def vari(a):
        return np.var(a.ravel(), ddof=1) * a.size

    def maskeff(z, zd):
        m = float((zd ** 2 * _MASK).sum() - zd[0, 0] ** 2 * _MASK[0, 0])
        pop = vari(z)
        if pop != 0:
            pop = (vari(z[:4, :4]) + vari(z[:4, 4:]) + vari(z[4:, 4:]) + vari(z[4:, :4])) / pop
        return np.sqrt(m * pop) / 32

    s_hvs = s_hvsm = 0.0
    n = 0
    for y in range(0, img1.shape[0] - 7, 8):
        for x in range(0, img1.shape[1] - 7, 8):
            a, b = img1[y:y + 8, x:x + 8], img2[y:y + 8, x:x + 8]
            ad, bd = dctn(a, norm="ortho"), dctn(b, norm="ortho")
            ma = max(maskeff(a, ad), maskeff(b, bd))
            u = np.abs(ad - bd)
            s_hvs += float(((u * _CSF) ** 2).sum())
            t = ma / _MASK
            um = np.where(u < t, 0.0, u - t)
            um[0, 0] = u[0, 0]
            s_hvsm += float(((um * _CSF) ** 2).sum())
            n += 64
    return tuple(10 * np.log10(255 * 255 / (s / n)) for s in (s_hvs, s_hvsm))


def test_psnr_hvs_and_hvs_m_match_the_reference_m_file():
    pytest.importorskip("psnr_hvsm")
    for name, ref, test in CASES[::2]:
        a = color.yuv709(_t(ref))[0].double().numpy() * 255
        b = color.yuv709(_t(test))[0].double().numpy() * 255
        hvs, hvsm = _psnrhvsm_m_file(a, b)
        assert abs(_score(jpeg_ai.PSNRHVS(), ref, test) - hvs) < 1e-6, name
        assert abs(_score(jpeg_ai.PSNRHVSM(), ref, test) - hvsm) < 1e-6, name


def test_psnr_hvs_of_identical_images_is_the_packages_cap_of_100():
    pytest.importorskip("psnr_hvsm")
    _, ref, _ = CASES[0]
    assert _score(jpeg_ai.PSNRHVS(), ref, ref) == 100.0
    assert _score(jpeg_ai.PSNRHVSM(), ref, ref) == 100.0


def test_psnr_hvs_pads_to_a_multiple_of_8_by_replication():
    pytest.importorskip("psnr_hvsm")
    _, ref, test = CASES[0]
    ref, test = ref[:250, :245], test[:250, :245]
    padded = [np.pad(x, ((0, 6), (0, 3), (0, 0)), mode="edge") for x in (ref, test)]
    assert _score(jpeg_ai.PSNRHVS(), ref, test) == pytest.approx(
        _score(jpeg_ai.PSNRHVS(), *padded), abs=1e-9)


# ------------------------------------------------------------------ VMAF

def _ffmpeg_vmaf(ref: np.ndarray, test: np.ndarray, tmp_path) -> float:
    """libvmaf (vmaf_v0.6.1) inside imageio-ffmpeg's static ffmpeg, on the framework's
    10-bit 4:4:4 BT.709 planes (as its `vmaf -p 444 -b 10` call)."""
    import json

    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    paths = []
    for role, img in (("ref", ref), ("test", test)):
        path = tmp_path / f"{role}.yuv"
        path.write_bytes(color.codes(color.yuv709(_t(img))).numpy().astype("<u2").tobytes())
        paths.append(path)
    h, w = ref.shape[:2]
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv444p10le", "-s", f"{w}x{h}"]
    log = tmp_path / "vmaf.json"
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", *raw, "-i", str(paths[1]),
                    *raw, "-i", str(paths[0]), "-lavfi",
                    f"libvmaf=log_fmt=json:log_path={log}:n_threads=1", "-f", "null", "-"],
                   check=True, capture_output=True)
    return json.loads(log.read_text())["frames"][0]["metrics"]["vmaf"]


def test_vmaf_matches_libvmaf_through_ffmpeg(tmp_path):
    pytest.importorskip("vmaf_torch")
    for name, ref, test in CASES:
        ours = _score(jpeg_ai.VMAF(), ref, test)
        theirs = _ffmpeg_vmaf(ref, test, tmp_path)
        assert abs(ours - theirs) < 0.05, (name, ours, theirs)


# ------------------------------------------------------------------ missing library

def test_a_missing_library_is_an_install_remedy(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "piq" else real(name, *a))
    (text,) = jpeg_ai.VIF().missing_weights()
    assert "piq" in text and 'pip install "jcsr-bench[jpeg-ai]"' in text
    assert jpeg_ai.NLPD().missing_weights() == []  # written here, needs nothing


def test_vmaf_of_identical_images_is_not_100_without_the_motion_feature():
    pytest.importorskip("vmaf_torch")
    _, ref, _ = CASES[0]
    assert _score(jpeg_ai.VMAF(), ref, ref) == pytest.approx(97.43, abs=0.01)


# ------------------------------------------------------------------ a whole run

@pytest.mark.slow
def test_run_with_the_jpeg_ai_preset_gives_a_bd_rate_for_every_ctc_metric(tmp_path):
    """Acceptance: ``run --metrics jpeg-ai`` on samples with JPEG and WebP writes a BD-Rate
    for every CTC metric (here one image, four qualities)."""
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench.run.engine import run

    summary = run(registry=load_registry([]), datasets=["samples"], codecs=["jpeg", "webp"],
                  srs=["bicubic"], qualities=[10, 30, 50, 75], limit=1, metrics=["jpeg-ai"],
                  output=tmp_path, progress=False, stream=io.StringIO())
    assert summary.exit_code == 0, summary.failed
    from helpers import table_row

    below = (tmp_path / "leaderboard.md").read_text().split("BD-Rate (%) per metric", 1)[1]
    cells = table_row(below, "webp+bicubic")
    for short in ("PSNR-Y709", "PSNR-U709", "PSNR-V709", "MS-SSIM-Y", "VIF", "FSIM", "NLPD",
                  "IW-SSIM", "VMAF", "PSNR-HVS"):
        value = cells[f"BD-Rate {short} (%)"].split()[0]
        assert float(value) < 0, (short, cells)  # WebP beats JPEG on every axis here
