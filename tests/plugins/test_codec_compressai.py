"""The compressai codec: real bitstreams, CompressAI's evaluator as the reference,
published-weight resolution offline, user checkpoints, identities and bad input.

Models are randomly initialised (no weights can be downloaded here), at small channel
counts where the architecture allows it, so the whole file runs in seconds on a CPU.
"""

import importlib
import json
import math
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.kit import paths
from jcsr_bench.kit.errors import DataError, JcsrError, RegistryError, WeightsError
from jcsr_bench.testing import check_codec, sample_image
from jcsr_bench_plugins.codecs import compressai_codec as cc
from jcsr_bench_plugins.codecs.compressai_codec import CompressAICodec, header_size, unpack_payload

ARCHS = {  # arch -> small constructor arguments
    "bmshj2018-hyperprior": (8, 12),
    "bmshj2018-factorized": (8, 12),
    "mbt2018-mean": (8, 12),
    "mbt2018": (8, 12),
    "cheng2020-anchor": (8,),
    "cheng2020-attn": (8,),
}
EXACT_RECONSTRUCT = {"bmshj2018-hyperprior", "bmshj2018-factorized", "mbt2018-mean"}
PUBLISHED_Q1 = "bmshj2018-hyperprior-1-7eb97409.pth.tar"


def random_model(arch, args=None, seed=0, update=True):
    from compressai.zoo.image import model_architectures

    torch.manual_seed(seed)
    net = model_architectures[arch](*(args or ARCHS[arch])).eval()
    if update:
        net.update(force=True)
    return net


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One small random-init checkpoint per architecture, wrapped as training scripts do."""
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for i, arch in enumerate(ARCHS):
        path = root / f"{arch}.pth.tar"
        torch.save({"epoch": 1, "state_dict": random_model(arch, seed=i).state_dict()}, path)
        out[arch] = path
    return out


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def psnr64(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = np.mean((a.numpy().astype(np.float64) - b.numpy().astype(np.float64)) ** 2)
    return 20 * math.log10(255) - 10 * math.log10(mse)


# -- round trip, all architectures -----------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHS))
def test_round_trip_and_conformance(arch, checkpoints):
    codec = CompressAICodec(arch, weights=str(checkpoints[arch]), qualities=[3])
    image = sample_image(40, 50, seed=1)  # not a multiple of 64: padded and cropped back
    payload = codec.encode(image, 3)
    decoded = codec.decode(payload)
    assert decoded.dtype == torch.uint8 and decoded.shape == image.shape
    parsed = unpack_payload(payload)
    assert (parsed.quality, parsed.height, parsed.width) == (3, 40, 50)
    assert len(payload) == parsed.header_size + sum(len(s) for s in parsed.streams)
    # every byte is counted: the streams are exactly CompressAI's compress() output
    net = codec.model(3)
    pad, _ = cc._pad(40, 50)
    x = torch.nn.functional.pad(image.float().div(255)[None], pad)
    with torch.no_grad():
        ref = net.compress(x)
    assert parsed.streams == [s[0] for s in ref["strings"]]
    assert torch.equal(codec.decode(payload), decoded)  # deterministic
    recon = codec.reconstruct(image, 3)
    if arch in EXACT_RECONSTRUCT:
        assert torch.equal(recon, decoded)
    else:
        assert recon.shape == image.shape
    check_codec(codec, image=sample_image(24, 40))


def _every_architecture():
    from compressai.zoo.image import model_architectures

    return sorted(model_architectures)


@pytest.mark.parametrize("arch", _every_architecture())
def test_latent_synthesizes_to_the_decoded_image(arch, tmp_path):
    """The latent contract, for every architecture CompressAI's zoo has (random weights,
    small channels): synthesize(decode_latent(p)) == decode(p), bit for bit."""
    args = ARCHS.get(arch, (8, 12))
    path = tmp_path / "w.pth"
    torch.save(random_model(arch, args).state_dict(), path)
    codec = CompressAICodec(arch, weights=str(path), qualities=[3])
    image = sample_image(40, 70, seed=2)  # padded to 64x128: offset (12, 29)
    payload = codec.encode(image, 3)
    latent = codec.decode_latent(payload)
    assert latent.y.dtype == torch.float32 and latent.y.shape[:2] == (1, args[-1])
    assert (latent.quality, latent.size, latent.offset, latent.stride) == (3, (40, 70),
                                                                           (12, 29), 16)
    assert tuple(latent.y.shape[2:]) == (4, 8)
    assert torch.equal(codec.synthesize(latent), codec.decode(payload))
    assert isinstance(codec.synthesis_module(3), torch.nn.Module)


def test_kit_catches_a_latent_that_does_not_synthesize_to_decode(checkpoints):
    from jcsr_bench.testing import ConformanceError

    codec = CompressAICodec("bmshj2018-hyperprior", weights=str(checkpoints[
        "bmshj2018-hyperprior"]), qualities=[3])
    real = codec.synthesize
    codec.synthesize = lambda latent: real(latent).flip(-1)  # type: ignore[method-assign]
    with pytest.raises(ConformanceError, match="synthesize.*differs from decode"):
        check_codec(codec, image=sample_image(24, 40))


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (65, 67), (64, 128)])
def test_small_and_odd_sizes(size, checkpoints):
    codec = CompressAICodec(weights=str(checkpoints["bmshj2018-hyperprior"]))
    image = sample_image(*size)
    payload = codec.encode(image, 1)
    assert codec.decode(payload).shape == image.shape
    assert len(payload) * 8 / (size[0] * size[1]) > 0


# -- CompressAI's evaluator is the reference -------------------------------------------


@pytest.fixture
def evaluator(monkeypatch):
    """compressai.utils.eval_model, imported in-process; its thread setting is undone."""
    threads = torch.get_num_threads()
    module = importlib.import_module("compressai.utils.eval_model.__main__")
    torch.set_num_threads(threads)
    captured = []
    original = module.compute_metrics

    def spy(org, rec, max_val=255):
        captured.append((rec * max_val).clamp(0, max_val).round().to(torch.uint8)[0])
        return original(org, rec, max_val)

    monkeypatch.setattr(module, "compute_metrics", spy)
    yield module, captured
    torch.set_num_threads(threads)


def test_matches_compressai_evaluator(tmp_path, evaluator, capsys):
    module, captured = evaluator
    torch.manual_seed(0)
    net = random_model("bmshj2018-hyperprior", (16, 24), update=False)  # as after training
    ckpt = tmp_path / "ours-q1.pth.tar"
    torch.save({"epoch": 3, "state_dict": net.state_dict()}, ckpt)
    images = tmp_path / "images"
    images.mkdir()
    arrays = []
    # sides multiples of 64 (the acceptance case), and one odd size: the same padding
    for i, size in enumerate([(192, 256), (192, 256), (193, 261)]):
        arr = sample_image(*size, seed=10 + i).permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(images / f"im{i}.png")
        arrays.append(arr)
    out_dir = tmp_path / "eval"
    module.main(["checkpoint", str(images), "-a", "bmshj2018-hyperprior", "-p", str(ckpt),
                 "--per-image", "-d", str(out_dir), "-o", "summary.json"])
    capsys.readouterr()
    summary = json.loads((out_dir / "summary.json").read_text())["results"]
    per_image = {p.name.split("-")[0]: json.loads(p.read_text())["results"]
                 for p in out_dir.glob("im*-*.json")}

    codec = CompressAICodec("bmshj2018-hyperprior", weights=str(ckpt), qualities=[1])
    psnrs, bpps, headers = [], [], []
    for i, arr in enumerate(arrays):
        image = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        payload = codec.encode(image, 1)
        decoded = codec.decode(payload)
        pixels = image.shape[1] * image.shape[2]
        assert torch.equal(decoded, captured[i])  # bit-exact: the evaluator's own image
        psnrs.append(psnr_rgb(image, decoded))  # the harness's metric
        bpps.append(8 * len(payload) / pixels)
        ref = per_image[f"im{i}"]
        # the evaluator computes in float32: its formula on our image gives its number
        assert abs(module.psnr(image.float(), decoded.float()).item() - ref["psnr-rgb"]) < 1e-6
        # and the harness's psnr-rgb is that number (and within float32 rounding of exact)
        assert abs(psnrs[-1] - ref["psnr-rgb"]) < 1e-6
        assert abs(psnrs[-1] - psnr64(image, decoded)) <= 4 * np.finfo(np.float32).eps * 40
        assert header_size(payload) == 18  # 15 fixed + 2-byte and 1-byte stream lengths
        headers.append(8 * header_size(payload) / pixels)
        assert bpps[-1] - ref["bpp"] == pytest.approx(headers[-1], abs=1e-12)
    assert abs(np.mean(psnrs) - summary["psnr-rgb"][0]) < 1e-6
    assert np.mean(bpps) - summary["bpp"][0] == pytest.approx(np.mean(headers), abs=1e-12)


# -- published weights, offline ---------------------------------------------------------


def _save_random_hyperprior(path):
    from compressai.zoo.image import cfgs

    net = random_model("bmshj2018-hyperprior", cfgs["bmshj2018-hyperprior"][1], seed=5)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)  # the published files are bare state dicts
    return net


def test_published_weights_found_in_hub_cache_offline(monkeypatch, no_network):
    from compressai.zoo import image as zoo

    assert zoo.model_urls["bmshj2018-hyperprior"]["mse"][1].endswith("/" + PUBLISHED_Q1)
    hub = paths.torch_hub_checkpoints()
    assert str(hub.parent) == torch.hub.get_dir()  # the folder torch hub itself uses
    # A random model cannot carry the published hash, so it is saved under the published
    # naming scheme with its own hash prefix, and the URL table points to that name.
    tmp = hub / "tmp.pth.tar"
    net = _save_random_hyperprior(tmp)
    prefix = cc.wlayer.sha256_file(tmp)[:8]
    name = f"bmshj2018-hyperprior-1-{prefix}.pth.tar"
    tmp.rename(hub / name)
    url = f"{zoo.root_url}/{name}"
    monkeypatch.setitem(zoo.model_urls["bmshj2018-hyperprior"]["mse"], 1, url)

    codec = CompressAICodec(qualities=[1])
    assert codec.missing_weights() == []
    loaded = codec.model(1)
    assert torch.equal(loaded.g_a[0].weight, net.g_a[0].weight)
    image = sample_image(64, 64)
    assert codec.decode(codec.encode(image, 1)).shape == image.shape
    assert f"sha256:{prefix}" in cc.CompressAICodec(qualities=[1])._weight_id(1)


def test_published_weights_missing_offline(no_network):
    codec = CompressAICodec(qualities=[1, 2])
    remedies = codec.missing_weights()
    assert len(remedies) == 2 and PUBLISHED_Q1 in remedies[0]
    with pytest.raises(WeightsError) as info:
        codec.encode(sample_image(), 1)
    message = str(info.value)
    assert PUBLISHED_Q1 in message
    assert str(paths.torch_hub_checkpoints()) in message
    assert "https://compressai.s3.amazonaws.com/models/v1/" + PUBLISHED_Q1 in message


def test_published_weights_tampered(no_network):
    _save_random_hyperprior(paths.torch_hub_checkpoints() / PUBLISHED_Q1)
    actual = cc.wlayer.sha256_file(paths.torch_hub_checkpoints() / PUBLISHED_Q1)
    codec = CompressAICodec(qualities=[1])
    with pytest.raises(WeightsError) as info:
        codec.encode(sample_image(), 1)
    assert "7eb97409" in str(info.value) and actual in str(info.value)


# -- user checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", [None, "state_dict", "network", "module"])
def test_user_checkpoint_wrappers_and_update(tmp_path, wrapper):
    net = random_model("mbt2018-mean", update=False)  # tables not built yet, as after training
    state = net.state_dict()
    if wrapper == "module":
        obj = {f"module.{k}": v for k, v in state.items()}
    else:
        obj = state if wrapper is None else {wrapper: state, "optimizer": {}}
    torch.save(obj, tmp_path / "ckpt.pth.tar")
    codec = CompressAICodec("mbt2018-mean", weights=str(tmp_path / "ckpt.pth.tar"),
                            qualities=[4])
    image = sample_image(32, 48)
    decoded = codec.decode(codec.encode(image, 4))
    reference = random_model("mbt2018-mean")  # same seed, tables built
    pad, unpad = cc._pad(32, 48)
    with torch.no_grad():
        out = reference.compress(torch.nn.functional.pad(image.float().div(255)[None], pad))
        x_hat = reference.decompress(out["strings"], out["shape"])["x_hat"]
    expected = cc._to_uint8(torch.nn.functional.pad(x_hat, unpad), "reference")
    assert torch.equal(decoded, expected)


def test_weights_mapping_and_errors(tmp_path, checkpoints):
    path = str(checkpoints["bmshj2018-hyperprior"])
    codec = CompressAICodec(weights={2: path, "5": path})
    assert codec.qualities == [2, 5]
    with pytest.raises(RegistryError, match=r"no weights for quality \[3\]"):
        CompressAICodec(weights={2: path}, qualities=[2, 3])
    with pytest.raises(RegistryError, match="one weights file"):
        CompressAICodec(weights=path, qualities=[1, 2])
    wrong = CompressAICodec("cheng2020-anchor", weights=path)
    with pytest.raises(WeightsError, match="does not fit architecture cheng2020-anchor"):
        wrong.encode(sample_image(), 1)
    missing = CompressAICodec(weights=str(tmp_path / "none.pth"))
    assert "none.pth" in missing.missing_weights()[0]
    with pytest.raises(WeightsError, match="none.pth"):
        missing.encode(sample_image(), 1)


# -- identity --------------------------------------------------------------------------


def test_identity_covers_everything_that_changes_output(tmp_path, checkpoints):
    a = CompressAICodec()
    assert a.identity == CompressAICodec().identity
    assert a.identity.startswith("compressai:bmshj2018-hyperprior:mse:")
    others = {
        CompressAICodec(metric="ms-ssim").identity,
        CompressAICodec("mbt2018-mean").identity,
        CompressAICodec(pretrained=False).identity,
        CompressAICodec(qualities=[1, 2]).identity,
    }
    assert a.identity not in others and len(others) == 4
    path = tmp_path / "mine.pth"
    path.write_bytes(checkpoints["bmshj2018-hyperprior"].read_bytes())
    before = CompressAICodec(weights=str(path)).identity
    torch.save(random_model("bmshj2018-hyperprior", seed=9).state_dict(), path)
    after = CompressAICodec(weights=str(path)).identity
    assert before != after


# -- bad input -------------------------------------------------------------------------


def test_bad_input(checkpoints):
    codec = CompressAICodec(weights=str(checkpoints["bmshj2018-hyperprior"]), qualities=[3])
    image = sample_image(32, 32)
    with pytest.raises(JcsrError, match=r"valid qualities: \[3\]"):
        codec.encode(image, 9)
    payload = codec.encode(image, 3)
    corrupt = bytearray(payload)
    corrupt[-3] ^= 0x40
    flipped_header = bytearray(payload)
    flipped_header[3] ^= 1
    for bad, why in [
        (payload[:-1], "truncated"),
        (payload[:5], "truncated"),
        (payload + b"\0", "trailing"),
        (bytes(corrupt), "CRC"),
        (bytes(flipped_header), "CRC"),
        (b"\xff\xd8\xff\xe0" + payload[4:], "not a jcsr-bench compressai payload"),
    ]:
        with pytest.raises(DataError, match=why):
            codec.decode(bad)
    other = CompressAICodec(weights=str(checkpoints["bmshj2018-hyperprior"]), qualities=[4])
    with pytest.raises(DataError, match="quality 3"):
        other.decode(payload)
    with pytest.raises(DataError, match="uint8"):
        codec.encode(image.float(), 3)
    with pytest.raises(DataError, match="uint8"):
        codec.encode(image[:1], 3)
    with pytest.raises(RegistryError, match="Did you mean 'bmshj2018-hyperprior'"):
        CompressAICodec("bmshj2018-hyperprio")
    with pytest.raises(RegistryError, match="published qualities: \\[1, 2, 3, 4, 5, 6\\]"):
        CompressAICodec("cheng2020-anchor", qualities=[7])
    with pytest.raises(RegistryError, match="metric"):
        CompressAICodec(metric="psnr")


def test_registry_instances():
    from jcsr_bench.plugin.manager import PluginManager
    from jcsr_bench.plugin.registry import load_registry

    registry = load_registry(manager=PluginManager(entry_points=False))
    bmshj = registry.build("codecs", "bmshj")
    assert (bmshj.arch, bmshj.metric, bmshj.qualities) == ("bmshj2018-hyperprior", "mse",
                                                          list(range(1, 9)))
    assert registry.build("codecs", "bmshj-msssim").metric == "ms-ssim"
    assert registry.build("codecs", "cheng-attn").qualities == list(range(1, 7))
    assert len({registry.build("codecs", n).identity for n in
                ("bmshj", "bmshj-msssim", "bmshj-factorized", "mbt-mean", "mbt",
                 "cheng-anchor", "cheng-attn")}) == 7


# -- non-finite weights (issue 26) -------------------------------------------------------


def _poisoned(checkpoints, part):
    codec = CompressAICodec(weights=str(checkpoints["bmshj2018-hyperprior"]), qualities=[3])
    net = codec.model(3)  # loaded (finite), then broken in memory: load refuses NaN files
    with torch.no_grad():
        next(getattr(net, part).parameters()).view(-1)[0] = float("nan")
    return codec


def test_nan_in_the_encoder_fails_fast_instead_of_hanging_the_coder(checkpoints):
    import time

    codec = _poisoned(checkpoints, "g_a")
    start = time.monotonic()
    with pytest.raises(DataError, match=r"bmshj2018-hyperprior quality 3 \(.*hyperprior"
                                        r".*latent holds NaN.*refusing to entropy-code"):
        codec.encode(sample_image(32, 32), 3)
    assert time.monotonic() - start < 5


def test_nan_in_the_synthesis_fails_decode_naming_model_and_file(checkpoints):
    good = CompressAICodec(weights=str(checkpoints["bmshj2018-hyperprior"]), qualities=[3])
    payload = good.encode(sample_image(32, 32), 3)
    codec = _poisoned(checkpoints, "g_s")
    message = r"quality 3 \(.*bmshj2018-hyperprior.pth.tar\): the decoded image holds NaN"
    with pytest.raises(DataError, match=message):
        codec.decode(payload)
    with pytest.raises(DataError, match=message):
        codec.reconstruct(sample_image(32, 32), 3)
