"""ESRGAN: RRDBNet, the three published key schemes, strict loading, the esrgan component."""

from __future__ import annotations

import pytest
import torch

from jcsr_bench.archs.rrdbnet import RRDBNet, infer_arch, load_rrdbnet, to_basicsr_keys
from jcsr_bench.artifacts.trained_store import TrainedWeightsMissing
from jcsr_bench.imaging.images import save_image
from jcsr_bench.imaging.tiling import to_float, to_uint8
from jcsr_bench.kit.errors import DataError, JcsrError, WeightsError
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.testing import check_sr_model, sample_image
from jcsr_bench_plugins.sr.esrgan import ESRGAN

# spandrel's RRDBNet hard-codes 32 growth channels; keep the rest tiny for speed.
SMALL = {"num_feat": 16, "num_block": 2, "num_grow_ch": 32}


def make_net(seed: int = 0, **arch) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(**{**SMALL, **arch}).eval()


# Key schemes written out by hand from REFERENCE.md's table, independently of the module.
def esrgan_repo_keys(state: dict) -> dict:
    rename = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
              "conv_hr": "HRconv"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":  # body.i.rdbj.convk.w -> RRDB_trunk.i.RDBj.convk.w
            key = f"RRDB_trunk.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.{parts[4]}"
        elif parts[0] in rename:
            key = f"{rename[parts[0]]}.{parts[1]}"
        out[key] = value
    return out


def old_arch_keys(state: dict, num_block: int) -> dict:
    rename = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}",
              "conv_up1": "model.3", "conv_up2": "model.6", "conv_hr": "model.8",
              "conv_last": "model.10"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":  # body.i.rdbj.convk.w -> model.1.sub.i.RDBj.convk.0.w
            key = f"model.1.sub.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.0.{parts[4]}"
        else:
            key = f"{rename[parts[0]]}.{parts[1]}"
        out[key] = value
    return out


@pytest.fixture
def scheme_files(tmp_path):
    """One random RRDBNet saved in the three published schemes (BasicSR file wrapped)."""
    net = make_net()
    state = net.state_dict()
    decoy = make_net(seed=1).state_dict()  # 'params' differs: params_ema must win
    files = {
        "basicsr": tmp_path / "net_basicsr.pth",
        "esrgan": tmp_path / "RRDB_net_x4.pth",
        "old": tmp_path / "net_old.pth",
    }
    torch.save({"params": decoy, "params_ema": state}, files["basicsr"])
    torch.save(esrgan_repo_keys(state), files["esrgan"])
    torch.save(old_arch_keys(state, SMALL["num_block"]), files["old"])
    return net, files


def test_three_key_schemes_load_to_identical_outputs(scheme_files):
    net, files = scheme_files
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        reference = net(x)
        for scheme, path in files.items():
            loaded = load_rrdbnet(path)
            assert loaded.arch == {**SMALL, "num_in_ch": 3, "num_out_ch": 3, "scale": 4,
                                   "skip": None}
            assert torch.equal(loaded(x), reference), scheme


def test_outputs_match_spandrel_for_every_scheme(scheme_files):
    spandrel = pytest.importorskip("spandrel")
    net, files = scheme_files
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        ours = net(x)
        for scheme, path in files.items():
            descriptor = spandrel.ModelLoader().load_from_file(path)
            assert descriptor.architecture.id == "ESRGAN" and descriptor.scale == 4
            theirs = descriptor.model.eval()(x)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0, msg=scheme)
            # our hand-written old-arch scheme is spandrel's (an independent implementation)
            if scheme == "old":
                assert set(descriptor.model.state_dict()) == set(torch.load(path))


@pytest.mark.parametrize("scale", [2, 1])
def test_real_esrgan_pixel_unshuffle_variants_match_spandrel(scale):
    spandrel = pytest.importorskip("spandrel")
    net = make_net(scale=scale)
    assert infer_arch(net.state_dict())["scale"] == scale
    descriptor = spandrel.ModelLoader().load_from_state_dict(dict(net.state_dict()))
    x = torch.rand(1, 3, 13, 9)  # odd sizes: both pad by reflection, then crop
    with torch.inference_mode():
        ours = net(x)
        assert ours.shape[-2:] == (13 * scale, 9 * scale)
        torch.testing.assert_close(ours, descriptor.model.eval()(x), atol=1e-5, rtol=0)


def test_infer_arch_reads_every_hyper_parameter():
    net = RRDBNet(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=3, num_grow_ch=4)
    for state in (net.state_dict(), old_arch_keys(net.state_dict(), 3)):
        assert infer_arch(state) == {"num_in_ch": 1, "num_out_ch": 1, "num_feat": 8,
                                     "num_block": 3, "num_grow_ch": 4, "scale": 4,
                                     "skip": None}


def test_to_basicsr_keys_unwraps_and_strips_dataparallel_prefix():
    state = make_net().state_dict()
    wrapped = {"params": {f"module.{k}": v for k, v in esrgan_repo_keys(state).items()}}
    assert set(to_basicsr_keys(wrapped)) == set(state)


def test_strict_loading_lists_missing_unexpected_and_shapes():
    state = dict(make_net().state_dict())
    del state["body.1.rdb3.conv5.weight"]
    state["extra_head.weight"] = torch.zeros(1)
    state["conv_hr.bias"] = torch.zeros(5)
    with pytest.raises(WeightsError) as info:
        load_rrdbnet(state)
    message = str(info.value)
    assert "missing keys (1): body.1.rdb3.conv5.weight" in message
    assert "unexpected keys (1): extra_head.weight" in message
    assert "shape mismatches (1): conv_hr.bias (5,) != (16,)" in message


def test_non_rrdbnet_checkpoint_is_refused_with_the_keys_seen():
    with pytest.raises(WeightsError, match="not an RRDBNet.*encoder.weight"):
        to_basicsr_keys({"encoder.weight": torch.zeros(1)})


_CALLED = []


def _side_effect():
    _CALLED.append(True)
    return {}


class _CodeInCheckpoint:
    def __reduce__(self):
        return (_side_effect, ())


def test_checkpoint_that_needs_code_execution_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"params_ema": make_net().state_dict(), "hook": _CodeInCheckpoint()}, path)
    with pytest.raises(WeightsError, match="pickled Python objects"):
        load_rrdbnet(path)
    with pytest.raises(WeightsError, match="pickled Python objects"):
        ESRGAN(weights=str(path)).upscale(sample_image(8, 8))
    assert _CALLED == []  # nothing in the file was run


# --------------------------------------------------------------------------- component


def test_component_from_file_upscales_like_the_network(scheme_files):
    net, files = scheme_files
    model = ESRGAN(weights=str(files["old"]))
    assert model.missing_weights() == []
    assert model.scale == 4
    image = sample_image(10, 14)
    out = model.upscale(image)
    with torch.inference_mode():
        expected = to_uint8(net(to_float(image, "cpu")))
    assert out.dtype == torch.uint8 and out.shape == (3, 40, 56)
    assert (out.int() - expected.int()).abs().max() <= 1  # channels_last: float rounding
    check_sr_model(model)


def test_identity_tracks_content_precision_and_tiling(scheme_files, tmp_path):
    _, files = scheme_files
    copy = tmp_path / "copy.pth"
    copy.write_bytes(files["esrgan"].read_bytes())
    a = ESRGAN(weights=str(files["esrgan"]))
    assert a.identity == ESRGAN(weights=str(copy)).identity  # content, not path
    assert a.identity != ESRGAN(weights=str(files["basicsr"])).identity  # other bytes
    assert a.identity != ESRGAN(weights=str(copy), precision="bf16").identity
    tiled = ESRGAN(weights=str(copy), tile=32).identity
    assert a.identity != tiled != ESRGAN(weights=str(copy), tile=32, tile_overlap=8).identity
    assert a.identity == ESRGAN(weights=str(copy), tile_overlap=8).identity  # unused
    assert a.identity.startswith("esrgan:")


def test_tiled_component_matches_untiled(scheme_files):
    _, files = scheme_files
    image = sample_image(30, 26)
    full = ESRGAN(weights=str(files["basicsr"])).upscale(image)
    tiled = ESRGAN(weights=str(files["basicsr"]), tile=16, tile_overlap=8).upscale(image)
    assert (full.int() - tiled.int()).abs().max() <= 1


def test_arch_only_model_is_deterministic_and_conformant():
    arch = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    a, b = ESRGAN(arch=arch), ESRGAN(arch=arch)
    image = sample_image(8, 8)
    assert torch.equal(a.upscale(image), b.upscale(image))
    assert a.identity == b.identity != ESRGAN(arch={**arch, "num_feat": 12}).identity
    check_sr_model(a)
    with pytest.raises(JcsrError, match="unknown keys"):
        ESRGAN(arch={"nf": 8})


def test_weights_that_disagree_with_arch_are_reported(scheme_files):
    _, files = scheme_files
    with pytest.raises(WeightsError, match="disagrees"):
        ESRGAN(weights=str(files["basicsr"]), arch={"num_block": 23}).upscale(sample_image(4, 4))


def test_bad_configuration_is_refused():
    with pytest.raises(JcsrError, match="needs 'weights'"):
        ESRGAN()
    with pytest.raises(JcsrError, match="precision"):
        ESRGAN(arch={}, precision="int8")
    with pytest.raises(WeightsError, match="sha256|SHA-256"):
        ESRGAN(weights={"url": "https://example.org/model.pth"})


def test_missing_local_weights_name_the_path(tmp_path):
    path = tmp_path / "nowhere" / "RRDB_PSNR_x4.pth"
    model = ESRGAN(weights=str(path))
    remedies = model.missing_weights()
    assert len(remedies) == 1 and str(path) in remedies[0]
    with pytest.raises(WeightsError, match="not found"):
        model.upscale(sample_image(4, 4))


def test_registry_instances_build_and_name_their_weights():
    registry = load_registry()
    b1 = registry.build("sr", "esrgan-b1")
    (remedy,) = b1.missing_weights()
    assert "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth" in remedy
    assert "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/" in remedy
    psnr = registry.build("sr", "esrgan-psnr")
    assert "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth" in psnr.missing_weights()[0]
    b2 = registry.build("sr", "esrgan-b2")
    assert b2.adapt is not None and b2.missing_weights() == []
    # its models are keyed by DF2K's content: without DF2K that key cannot be computed
    with pytest.raises(DataError, match=r"sr\.esrgan-b2\.adapt\.dataset 'df2k'.*DIV2K"):
        _ = b2.adapt_identity


def test_official_weights_file_is_found_in_the_hub_cache_and_verified(tmp_path, monkeypatch):
    """The esrgan-b1 source resolves from torch hub's folder; a wrong file is refused."""
    from jcsr_bench.kit.paths import torch_hub_checkpoints

    b1 = load_registry().build("sr", "esrgan-b1")
    target = torch_hub_checkpoints() / "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
    target.parent.mkdir(parents=True)
    torch.save({"params_ema": make_net().state_dict()}, target)  # not the published bytes
    assert b1.missing_weights() == []
    with pytest.raises(WeightsError, match="hash mismatch"):
        b1.upscale(sample_image(4, 4))


# --------------------------------------------------------------------------- adaptive


def test_adaptive_instance_resolves_weights_per_codec_quality(tmp_path):
    (tmp_path / "imgs").mkdir()
    save_image(sample_image(8, 8), tmp_path / "imgs" / "a.png")
    user = tmp_path / "reg.yaml"
    user.write_text(f"datasets:\n  few: {{type: folder, root: '{tmp_path / 'imgs'}'}}\n"
                    "sr:\n  b2: {type: esrgan, adapt: {init: esrgan-b1, dataset: few}}\n"
                    "  b2-100: {type: esrgan, adapt: {init: esrgan-b1, dataset: few, "
                    "steps: 100}}\n")
    registry = load_registry([user])
    adaptive = registry.build("sr", "b2-100")
    # the published init is identified by its pinned hash: no weight file is needed
    assert adaptive.adapt_identity != registry.build("sr", "b2").adapt_identity
    with pytest.raises(JcsrError, match="through a registry"):
        _ = ESRGAN(adapt={"init": "esrgan-b1"}).adapt_identity
    with pytest.raises(JcsrError, match="for_codec"):
        adaptive.upscale(sample_image(4, 4))
    assert adaptive.identity == adaptive.adapt_identity and adaptive.scale == 4

    codec = "compressai:bmshj2018-hyperprior:mse:w=0123"
    with pytest.raises(TrainedWeightsMissing) as info:
        adaptive.for_codec(codec, 3)
    assert info.value.quality == 3
    assert info.value.path == adaptive.checkpoint_path(codec, 3)
    assert isinstance(info.value, WeightsError) and "train-sr" in str(info.value)

    net = make_net(seed=5)
    path = adaptive.checkpoint_path(codec, 3)
    path.parent.mkdir(parents=True)
    torch.save({"params_ema": net.state_dict()}, path)
    model = adaptive.for_codec(codec, 3)
    check_sr_model(model)
    image = sample_image(6, 7)
    with torch.inference_mode():
        expected = to_uint8(net(to_float(image, "cpu")))
    assert (model.upscale(image).int() - expected.int()).abs().max() <= 1

    other = adaptive.checkpoint_path(codec, 4)
    other.parent.mkdir(parents=True, exist_ok=True)
    torch.save(make_net(seed=6).state_dict(), other)
    assert adaptive.for_codec(codec, 4).identity != model.identity
    with pytest.raises(TrainedWeightsMissing):
        adaptive.for_codec("jpeg:other", 3)  # another codec's weights are not reused


def test_static_instance_for_codec_is_itself():
    model = ESRGAN(arch={"num_feat": 8, "num_block": 1})
    assert model.for_codec("any", 1) is model


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_reduced_precision_is_close(scheme_files):
    _, files = scheme_files
    image = sample_image(24, 20)
    cpu = ESRGAN(weights=str(files["basicsr"])).upscale(image)
    gpu = ESRGAN(weights=str(files["basicsr"])).to("cuda")
    out = gpu.upscale(image)
    assert out.device.type == "cpu" and (out.int() - cpu.int()).abs().max() <= 1
    for precision in ("bf16", "fp16"):
        low = ESRGAN(weights=str(files["basicsr"]), precision=precision).to("cuda")
        assert (low.upscale(image).int() - cpu.int()).abs().float().mean() < 2
    tiled = ESRGAN(weights=str(files["basicsr"]), tile=8, tile_overlap=8).to("cuda")
    assert (tiled.upscale(image).int() - cpu.int()).abs().max() <= 1


def test_bicubic_skip_variant_starts_at_bicubic_and_round_trips_through_weights(tmp_path):
    import torch.nn.functional as F

    from jcsr_bench.archs.rrdbnet import RRDBNet, infer_arch, load_rrdbnet

    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, skip="bicubic")
    x = torch.rand(1, 3, 10, 12)
    bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(net(x), bicubic)  # zero-initialised residual
    torch.nn.init.normal_(net.conv_last.weight, std=0.1)
    path = tmp_path / "skip.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    assert infer_arch(torch.load(path, weights_only=True))["skip"] == "bicubic"
    loaded = load_rrdbnet(path)
    assert loaded.arch["skip"] == "bicubic"
    assert torch.equal(loaded(x), net(x)) and not torch.equal(loaded(x), bicubic)


def test_nan_weights_file_is_refused_before_any_compute(scheme_files, tmp_path):
    net, _ = scheme_files
    state = {k: v.clone() for k, v in net.state_dict().items()}
    next(iter(state.values())).view(-1)[0] = float("nan")
    torch.save({"params_ema": state}, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match=r"nan.pth: tensor 'params_ema\..*' holds NaN"):
        ESRGAN(weights=str(tmp_path / "nan.pth")).upscale(sample_image(8, 8))


def test_non_finite_output_fails_naming_model_and_file(scheme_files):
    _, files = scheme_files
    model = ESRGAN(weights=str(files["basicsr"]))
    network = model._network()
    with torch.no_grad():  # broken in memory (fp16 overflow does the same)
        network.conv_last.bias.fill_(float("inf"))
    with pytest.raises(DataError, match=rf"esrgan \({files['basicsr']}\): the SR output "
                                        r"holds NaN or infinite values"):
        model.upscale(sample_image(8, 8))
