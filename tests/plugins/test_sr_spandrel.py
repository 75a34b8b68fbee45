"""The spandrel SR type: bring-your-own checkpoints through spandrel's detection."""

from __future__ import annotations

import sys

import pytest
import torch

from jcsr_bench.archs.rrdbnet import RRDBNet
from jcsr_bench.imaging.tiling import to_float, to_uint8
from jcsr_bench.kit.errors import JcsrError, WeightsError
from jcsr_bench.testing import check_sr_model, sample_image
from jcsr_bench_plugins.sr.esrgan import ESRGAN

spandrel = pytest.importorskip("spandrel")

from jcsr_bench_plugins.sr.spandrel_sr import SpandrelSR  # noqa: E402


def save(tmp_path, name, state):
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.fixture
def compact_file(tmp_path):
    """A Real-ESRGAN 'Compact' (SRVGGNet) x2: a pure conv net with a small context."""
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2).eval()
    return net, save(tmp_path, "compact_x2.pth", {"params": net.state_dict()})


def test_rrdbnet_checkpoint_gives_the_esrgan_result(tmp_path):
    torch.manual_seed(0)
    state = RRDBNet(num_feat=16, num_block=1).state_dict()
    path = save(tmp_path, "rrdb.pth", {"params_ema": state})
    model = SpandrelSR(weights=str(path))
    assert model.scale == 4 and model.architecture == "ESRGAN"
    image = sample_image(10, 12)
    ours = ESRGAN(weights=str(path)).upscale(image)
    assert (model.upscale(image).int() - ours.int()).abs().max() <= 1
    check_sr_model(model)


@pytest.mark.filterwarnings("ignore:torch.meshgrid")
def test_swinir_checkpoint_runs_as_spandrel_runs_it(tmp_path):
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    net = SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2],
                 num_heads=[2], mlp_ratio=2, upsampler="pixelshuffle").eval()
    path = save(tmp_path, "swinir_x2.pth", net.state_dict())
    model = SpandrelSR(weights=str(path))
    assert model.scale == 2 and model.architecture == "SwinIR"
    image = sample_image(12, 20)  # below SwinIR's 16 px minimum: spandrel pads
    descriptor = spandrel.ModelLoader().load_from_file(path)
    with torch.inference_mode():
        expected = to_uint8(descriptor(to_float(image, "cpu")))
    out = model.upscale(image)
    assert out.shape == (3, 24, 40) and torch.equal(out, expected)


def test_tiled_equals_untiled(compact_file):
    net, path = compact_file
    image = sample_image(40, 30)
    full = SpandrelSR(weights=str(path)).upscale(image)
    tiled = SpandrelSR(weights=str(path), tile=16, tile_overlap=8).upscale(image)
    assert torch.equal(full, tiled)
    with torch.inference_mode():
        assert torch.equal(full, to_uint8(net(to_float(image, "cpu"))))


def test_identity_covers_content_and_settings(compact_file, tmp_path):
    net, path = compact_file
    a = SpandrelSR(weights=str(path))
    assert a.identity.startswith("spandrel:")
    assert a.identity == SpandrelSR(weights=str(path)).identity
    assert a.identity != SpandrelSR(weights=str(path), precision="bf16").identity
    assert a.identity != SpandrelSR(weights=str(path), tile=32).identity
    other = save(tmp_path, "other.pth", {k: v + 1 for k, v in net.state_dict().items()})
    assert a.identity != SpandrelSR(weights=str(other)).identity


def test_unrecognised_and_unsafe_checkpoints_are_refused(tmp_path):
    junk = save(tmp_path, "junk.pth", {"foo.weight": torch.zeros(2, 2)})
    with pytest.raises(WeightsError, match="does not recognise"):
        SpandrelSR(weights=str(junk)).upscale(sample_image(4, 4))
    evil = tmp_path / "evil.pth"
    torch.save({"model": torch.nn.Identity()}, evil)  # a pickled module: code
    with pytest.raises(WeightsError, match="pickled Python objects"):
        SpandrelSR(weights=str(evil)).scale  # noqa: B018


def test_missing_weights_are_named(tmp_path):
    model = SpandrelSR(weights=str(tmp_path / "mine.pth"))
    assert "mine.pth" in model.missing_weights()[0]


def test_missing_spandrel_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel -> ImportError
    with pytest.raises(JcsrError, match=r"pip install 'jcsr-bench\[spandrel\]'"):
        SpandrelSR(weights=str(tmp_path / "x.pth"))
