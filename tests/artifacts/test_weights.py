"""The weights layer: sources, verification, downloads (file:// URLs), safe loading."""

import hashlib
import os
import urllib.request

import pytest
import torch

from jcsr_bench.artifacts import weights
from jcsr_bench.kit import paths
from jcsr_bench.kit.errors import WeightsError


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("JCSR_BENCH_OFFLINE", raising=False)


def test_sha256_file_and_identity_cache(tmp_path):
    f = tmp_path / "w.bin"
    digest = _write(f, os.urandom(3 << 20))  # several chunks
    assert weights.sha256_file(f) == digest
    assert weights.file_identity(f) == digest[:16]
    _write(f, b"other content")
    assert weights.file_identity(f) == hashlib.sha256(b"other content").hexdigest()[:16]
    with pytest.raises(WeightsError, match="not found"):
        weights.file_identity(tmp_path / "nope.bin")


def test_hub_folder_is_torch_hubs(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert paths.torch_hub_checkpoints() == tmp_path / "th" / "hub" / "checkpoints"
    assert str(paths.torch_hub_checkpoints().parent) == torch.hub.get_dir()


def test_source_normalisation():
    src = weights.normalize_source({"url": "https://x.org/m/model-1-7eb97409.pth.tar"})
    assert src == {
        "url": "https://x.org/m/model-1-7eb97409.pth.tar",
        "sha256": "7eb97409",
        "filename": "model-1-7eb97409.pth.tar",
    }
    # a plain URL string is a URL source too; an explicit hash wins over the name
    assert weights.normalize_source("https://x.org/a-12345678.pth")["sha256"] == "12345678"
    full = "ab" * 32
    assert weights.normalize_source({"url": "https://x.org/a.pth", "sha256": full.upper()})[
        "sha256"] == full
    with pytest.raises(WeightsError, match="no SHA-256"):
        weights.normalize_source({"url": "https://x.org/RealESRGAN_x4plus.pth"})
    with pytest.raises(WeightsError, match="unknown key"):
        weights.normalize_source({"url": "https://x.org/a-12345678.pth", "sha": "x"})
    with pytest.raises(WeightsError, match="hex"):
        weights.normalize_source({"url": "https://x.org/a.pth", "sha256": "xyz"})
    with pytest.raises(WeightsError, match="plain file name"):
        weights.normalize_source({"url": "https://x.org/a-12345678.pth", "filename": "../a"})


def test_resolve_local_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _write(tmp_path / "models" / "m.pth", b"x")
    assert weights.resolve("~/models/m.pth") == tmp_path / "models" / "m.pth"
    monkeypatch.chdir(tmp_path / "models")
    assert weights.resolve("m.pth") == tmp_path / "models" / "m.pth"
    with pytest.raises(WeightsError, match=r"weight file not found: .*missing\.pth"):
        weights.resolve("missing.pth")


def test_resolve_cached_url_without_network(no_network):
    name = "net-1-{}.pth"
    data = b"weights" * 100
    digest = hashlib.sha256(data).hexdigest()
    dest = paths.torch_hub_checkpoints() / name.format(digest[:8])
    _write(dest, data)
    src = {"url": "https://example.org/models/" + dest.name}
    assert weights.resolve(src) == dest
    assert weights.missing_remedy(src) is None
    assert weights.resolve({**src, "sha256": digest}) == dest


def test_missing_offline_names_file_folder_and_url(no_network):
    url = "https://example.org/models/net-2-0123abcd.pth.tar"
    with pytest.raises(WeightsError) as info:
        weights.resolve({"url": url})
    message = str(info.value)
    assert "net-2-0123abcd.pth.tar" in message
    assert str(paths.torch_hub_checkpoints()) in message
    assert url in message and "offline" in message
    remedy = weights.missing_remedy({"url": url})
    assert "net-2-0123abcd.pth.tar" in remedy and url in remedy


def test_tampered_file_fails_the_hash(no_network):
    dest = paths.torch_hub_checkpoints() / "net-3-0123abcd.pth"
    actual = _write(dest, b"not the published file")
    with pytest.raises(WeightsError) as info:
        weights.resolve({"url": "https://example.org/" + dest.name})
    assert "0123abcd" in str(info.value) and actual in str(info.value)
    assert dest.exists()  # a user's file is never deleted behind their back


def test_download_verifies_and_is_atomic(tmp_path, online):
    data = os.urandom(1 << 16)
    digest = _write(tmp_path / "remote" / "blob.bin", data)
    url = (tmp_path / "remote" / "blob.bin").as_uri()
    dest = paths.torch_hub_checkpoints() / f"blob-{digest[:8]}.bin"
    assert weights.resolve({"url": url, "filename": dest.name}, progress=False) == dest
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == [dest.name]  # no temp file left behind

    bad = paths.torch_hub_checkpoints() / "other.bin"
    with pytest.raises(WeightsError) as info:
        weights.download(url, bad, "deadbeef", progress=False)
    assert "deadbeef" in str(info.value) and digest in str(info.value)
    assert os.listdir(dest.parent) == [dest.name]  # the bad download was discarded

    with pytest.raises(WeightsError, match="could not download"):
        weights.download((tmp_path / "absent.bin").as_uri(), bad, None, progress=False)


def test_offline_forbids_download(tmp_path, no_network):
    with pytest.raises(WeightsError, match="network access is off"):
        weights.download("https://example.org/x.bin", tmp_path / "x.bin", None)


def test_load_checkpoint_plain_and_safetensors(tmp_path):
    state = {"a.weight": torch.randn(3, 2), "b": torch.arange(4)}
    torch.save(state, tmp_path / "plain.pth")
    loaded = weights.load_checkpoint(tmp_path / "plain.pth")
    assert loaded.keys() == state.keys() and torch.equal(loaded["a.weight"], state["a.weight"])

    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "m.safetensors"))
    save_file(state, str(tmp_path / "disguised.pth"))  # sniffed by content, not name
    for name in ("m.safetensors", "disguised.pth"):
        assert torch.equal(weights.load_checkpoint(tmp_path / name)["b"], state["b"])


def test_load_checkpoint_legacy_format(tmp_path):
    """CompressAI's older published files use torch's pre-zip serialisation."""
    state = {"w": torch.randn(4)}
    torch.save(state, tmp_path / "old.pth.tar", _use_new_zipfile_serialization=False)
    assert torch.equal(weights.load_checkpoint(tmp_path / "old.pth.tar")["w"], state["w"])


class NeedsCode:
    """A pickled object whose loading would run this module's code."""

    def __init__(self):
        self.value = 1


def test_load_checkpoint_refuses_pickled_code(tmp_path):
    torch.save({"state_dict": {}, "extra": NeedsCode()}, tmp_path / "code.pth")
    with pytest.raises(WeightsError) as info:
        weights.load_checkpoint(tmp_path / "code.pth")
    message = str(info.value)
    assert "pickled" in message and "weights_only" in message and "code.pth" in message


def test_load_checkpoint_bad_files(tmp_path):
    _write(tmp_path / "junk.pth", b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        weights.load_checkpoint(tmp_path / "junk.pth")
    torch.save(torch.zeros(2), tmp_path / "tensor.pth")
    with pytest.raises(WeightsError, match="expected a dict"):
        weights.load_checkpoint(tmp_path / "tensor.pth")
    torch.save({"w": torch.zeros(1000)}, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    _write(tmp_path / "cut.pth", data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cut.pth"):
        weights.load_checkpoint(tmp_path / "cut.pth")


def test_load_checkpoint_text_file_names_it_and_what_was_expected(tmp_path):
    passwd = tmp_path / "passwd"  # `weights: ../../../etc/passwd`: an IndexError before
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/sh\n")
    with pytest.raises(WeightsError) as info:
        weights.load_checkpoint(passwd)
    message = str(info.value)
    assert str(passwd) in message and "not a checkpoint" in message
    assert "expected a PyTorch file of tensors" in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_load_checkpoint_refuses_non_finite_tensors(tmp_path, bad):
    state = {"body": {"conv.weight": torch.randn(2, 2)}, "ok": torch.arange(3)}
    state["body"]["conv.weight"][1, 0] = bad
    torch.save({"params_ema": state}, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match=r"nan.pth: tensor 'params_ema.body.conv.weight' "
                                           r"holds NaN or infinite values"):
        weights.load_checkpoint(tmp_path / "nan.pth")
    from safetensors.torch import save_file

    save_file({"w": torch.tensor([1.0, bad])}, str(tmp_path / "nan.safetensors"))
    with pytest.raises(WeightsError, match="tensor 'w' holds NaN"):
        weights.load_checkpoint(tmp_path / "nan.safetensors")


def test_unwrap_state_dict():
    inner = {"module.conv.weight": 1, "module.conv.bias": 2}
    assert weights.unwrap_state_dict({"state_dict": inner, "epoch": 3}) == {
        "conv.weight": 1, "conv.bias": 2}
    assert weights.unwrap_state_dict({"network": {"a": 1}}) == {"a": 1}
    assert weights.unwrap_state_dict({"params": {"a": 1}, "params_ema": {"a": 2}}) == {"a": 2}
    assert weights.unwrap_state_dict({"a": 1}) == {"a": 1}
