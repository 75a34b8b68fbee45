"""The evaluation engine on fake components that count their calls.

Fakes implement the component protocols (jcsr_bench.components): a lossy quantising
codec (self-contained payload), a nearest-neighbour SR model, a tiny in-memory dataset.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
import types
import zlib
from collections import Counter
from pathlib import Path

import pytest
import torch

from jcsr_bench import hookimpl
from jcsr_bench.engine import pixel_hash, run
from jcsr_bench.errors import JcsrError, WeightsError
from jcsr_bench.identity import digest, make_identity
from jcsr_bench.metrics import psnr_rgb
from jcsr_bench.plugin_manager import PluginManager
from jcsr_bench.registry import Registry
from jcsr_bench.store import load_curves, load_rows
from jcsr_bench.testing import sample_image

TESTS = Path(__file__).resolve().parent
ENCODES: Counter = Counter()  # (codec identity, quality, LR pixel hash) -> encode calls


class FakeCodec:
    """Quantises each sample to ``step * quality``; payload = header + zlib."""

    def __init__(self, step: int = 8, qualities=(1, 2), weights: str | None = None,
                 delay: float = 0.0, fail_quality=None, missing: bool = False):
        self.step, self.delay, self.fail_quality = step, delay, fail_quality
        self.weights, self.missing = weights, missing
        wid = hashlib.sha256(Path(weights).read_bytes()).hexdigest() if weights else None
        self.identity = make_identity("fake-codec", step=step, weights=wid)
        self.qualities = list(qualities)

    def missing_weights(self, qualities=None):
        return [f"fake weights for {q}: put them in /nowhere" for q in qualities or []] \
            if self.missing else []

    def encode(self, image, quality):
        ENCODES[(self.identity, quality, pixel_hash(image))] += 1
        log = os.environ.get("FAKE_CODEC_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{self.identity} {quality}\n")
        if self.delay:
            time.sleep(self.delay)
        if quality == self.fail_quality:
            raise RuntimeError(f"fake codec cannot do quality {quality}")
        step = self.step * quality
        h, w = image.shape[1:]
        q = (image.to(torch.int32) // step).to(torch.uint8)
        return struct.pack(">HHB", h, w, step) + zlib.compress(q.numpy().tobytes())

    def decode(self, data):
        h, w, step = struct.unpack_from(">HHB", data)
        raw = zlib.decompress(data[5:])
        q = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(3, h, w).to(torch.int32)
        return (q * step + step // 2).clamp(0, 255).to(torch.uint8)


class FakeSR:
    """Nearest-neighbour upscaling."""

    def __init__(self, scale: int = 4, shift: int = 0):
        self.scale, self.shift = scale, shift
        self.identity = make_identity("fake-sr", scale=scale, shift=shift)
        self.calls = 0

    def upscale(self, image):
        self.calls += 1
        out = image.repeat_interleave(self.scale, 1).repeat_interleave(self.scale, 2)
        return (out.int() + self.shift).clamp(0, 255).to(torch.uint8)


class FakeImages:
    """``n`` deterministic images, iterated (no names/load: the generic path)."""

    def __init__(self, n: int = 3, height: int = 40, width: int = 56, bad: str | None = None):
        self.images = [(f"img{i}", sample_image(height, width, seed=i)) for i in range(n)]
        if bad:
            self.images[1] = (bad, torch.zeros(3, 8, 8, dtype=torch.float32))
        self.identity = digest([pixel_hash(im) if im.dtype == torch.uint8 else "bad"
                                for _, im in self.images])

    def __iter__(self):
        return iter(self.images)

    def __len__(self):
        return len(self.images)


def make_plugin():
    plugin = types.ModuleType("jcsr_fake_plugin")

    @hookimpl
    def register_codecs(register):
        register("fake-codec", FakeCodec, params={"step": int, "qualities": list,
                                                  "weights": str, "delay": float,
                                                  "fail_quality": int, "missing": bool})

    @hookimpl
    def register_sr_models(register):
        register("fake-sr", FakeSR, params={"scale": int, "shift": int})

    @hookimpl
    def register_datasets(register):
        register("fake-images", FakeImages, params={"n": int, "height": int, "width": int,
                                                    "bad": str})

    plugin.register_codecs = register_codecs
    plugin.register_sr_models = register_sr_models
    plugin.register_datasets = register_datasets
    return plugin


REGISTRY = """
codecs:
  fa: {type: fake-codec, step: 8, qualities: [1, 2]}
  fb: {type: fake-codec, step: 12, qualities: [1, 2]}
  slow-a: {type: fake-codec, step: 8, qualities: [1, 2], delay: DELAY}
  slow-b: {type: fake-codec, step: 12, qualities: [1, 2], delay: DELAY}
  flaky: {type: fake-codec, step: 8, qualities: [1, 2], fail_quality: 2}
  gone: {type: fake-codec, step: 9, qualities: [1], missing: true}
  weighted: {type: fake-codec, step: 8, qualities: [1, 2], weights: WEIGHTS}
sr:
  up: {type: fake-sr}
  up-bright: {type: fake-sr, shift: 3}
  x2: {type: fake-sr, scale: 2}
datasets:
  tiny: {type: fake-images, n: 3}
  broken: {type: fake-images, n: 3, bad: broken-one}
suites:
  default:
    datasets: [tiny]
    codecs: [fa, gone]
    sr: [up, bicubic]
    anchor: {codec: fa, sr: bicubic}
"""


def make_registry(folder: Path, delay: float = 0.0) -> Registry:
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "weights.bin"
    if not weights.exists():
        weights.write_bytes(b"version 1")
    path = folder / "registry.yaml"
    path.write_text(REGISTRY.replace("DELAY", str(delay)).replace("WEIGHTS", str(weights)))
    registry = Registry(PluginManager(entry_points=False, extra_plugins=(make_plugin(),)))
    registry.add_file(path)
    registry.check_suites()
    return registry


@pytest.fixture
def registry(tmp_path):
    ENCODES.clear()
    return make_registry(tmp_path / "reg")


def go(registry, tmp_path, out="out", **kwargs):
    kwargs.setdefault("datasets", ["tiny"])
    kwargs.setdefault("codecs", ["fa", "fb"])
    kwargs.setdefault("srs", ["up", "bicubic"])
    return run(registry=registry, output=tmp_path / out, progress=False,
               stream=io.StringIO(), device="cpu", **kwargs)


def _values(db: Path) -> dict:
    """Stored metric values without timings, keyed by names."""
    return {(r["dataset"], r["image"], r["codec"], str(r["quality"]), r["sr"]):
            {k: v for k, v in r["values"].items() if not k.endswith("_s")}
            for r in load_rows(db)}


def test_codec_runs_once_per_codec_quality_image(registry, tmp_path):
    summary = go(registry, tmp_path)
    assert summary.exit_code == 0, summary.failed
    assert summary.cells == 3 * 2 * 2 * 2 and summary.computed == 24
    # 2 codecs x 2 qualities x 3 images, each exactly once, whatever the 2 SR models
    assert len(ENCODES) == 12 and set(ENCODES.values()) == {1}
    assert summary.codec_runs == 12
    rows = load_rows(summary.db_path)
    assert len(rows) == 24 and all(r["status"] == "ok" for r in rows)
    expected = {"bits", "bpp", "bpp_lr", "psnr-rgb", "psnr-y", "ms-ssim-rgb",
                "encode_s", "decode_s", "sr_s"}
    assert all(expected <= set(r["values"]) for r in rows)
    row = rows[0]
    assert row["values"]["bpp"] == pytest.approx(row["values"]["bits"] / (40 * 56))
    assert row["values"]["bpp_lr"] == pytest.approx(row["values"]["bits"] / (10 * 14))
    assert row["values"]["ms-ssim-rgb"] is None and "160" in row["reasons"]["ms-ssim-rgb"]
    # a finished matrix: nothing is computed again, no codec call
    ENCODES.clear()
    again = go(registry, tmp_path)
    assert (again.computed, again.cached, again.codec_runs, len(ENCODES)) == (0, 24, 0, 0)
    assert again.exit_code == 0


def test_metrics_follow_conventions(registry, tmp_path):
    summary = go(registry, tmp_path, codecs=["fa"], srs=["up"], qualities=[1])
    from jcsr_bench.lr import make_lr

    name, hr = FakeImages().images[0]
    lr = make_lr(hr, 4, "matlab")
    codec = FakeCodec(step=8)
    payload = codec.encode(lr, 1)
    sr = FakeSR().upscale(codec.decode(payload))
    row = next(r for r in load_rows(summary.db_path) if r["image"] == name)
    assert row["values"]["bits"] == 8 * len(payload)
    assert row["values"]["psnr-rgb"] == pytest.approx(psnr_rgb(hr, sr), abs=1e-12)
    assert row["values"]["sr_s"] >= 0 and row["values"]["encode_s"] >= 0


def test_scale_one_with_no_sr_scores_against_the_codec_input(registry, tmp_path):
    summary = go(registry, tmp_path, codecs=["fa"], srs=["none"], scale=1)
    assert summary.exit_code == 0
    name, hr = FakeImages().images[2]
    codec = FakeCodec(step=8)
    row = next(r for r in load_rows(summary.db_path) if r["image"] == name
               and r["quality"] == 2)
    assert row["values"]["bpp"] == row["values"]["bpp_lr"]
    assert row["values"]["psnr-rgb"] == pytest.approx(
        psnr_rgb(hr, codec.decode(codec.encode(hr, 2))), abs=1e-12)
    # an x4 model cannot follow a scale-1 run: a usage error before any compute
    with pytest.raises(JcsrError, match="scale"):
        go(registry, tmp_path, out="o2", codecs=["fa"], srs=["x2"], scale=1)


def test_codec_outputs_come_from_the_disk_cache(registry, tmp_path):
    first = go(registry, tmp_path)
    assert first.codec_runs == 12
    ENCODES.clear()
    # a new output folder (empty store) recomputes cells but not codec outputs
    second = go(registry, tmp_path, out="other")
    assert second.computed == 24 and second.codec_runs == 0 and second.codec_cache_hits == 12
    assert not ENCODES
    assert _values(first.db_path) == _values(second.db_path)
    # a new SR model only runs SR: codec outputs are shared
    third = go(registry, tmp_path, srs=["up", "bicubic", "up-bright"])
    assert (third.computed, third.codec_runs) == (12, 0)


def test_swapping_weights_recomputes_only_that_codec(registry, tmp_path):
    first = go(registry, tmp_path, codecs=["weighted", "fb"])
    assert first.computed == 24
    ENCODES.clear()
    (tmp_path / "reg" / "weights.bin").write_bytes(b"version 2")
    registry2 = make_registry(tmp_path / "reg")
    second = go(registry2, tmp_path, codecs=["weighted", "fb"])
    assert second.computed == 12 and second.cached == 12
    assert second.codec_runs == 6 and sum(ENCODES.values()) == 6
    new_identity = registry2.build("codecs", "weighted").identity
    assert {key[0] for key in ENCODES} == {new_identity}
    rows = load_rows(second.db_path)
    assert len(rows) == 24  # replaced, not duplicated


def test_failing_cells_are_stored_and_the_run_goes_on(registry, tmp_path):
    summary = go(registry, tmp_path, codecs=["flaky", "fb"])
    assert summary.exit_code == 1
    assert len(summary.failed) == 3 * 2  # quality 2 x 3 images x 2 SR
    assert all("cannot do quality 2" in f.error for f in summary.failed)
    rows = load_rows(summary.db_path)
    assert sum(r["status"] == "ok" for r in rows) == 18
    curves, _ = load_curves(summary.db_path)
    flaky = next(c for c in curves if c.codec == "flaky" and c.sr == "up")
    bad = next(p for p in flaky.points if p.quality == 2)
    assert bad.values["psnr-rgb"] is None and "failed" in bad.reasons["psnr-rgb"]
    # fail-fast stops at the first failing cell
    ENCODES.clear()
    fast = go(registry, tmp_path, out="ff", codecs=["flaky"], srs=["up"], fail_fast=True,
              overwrite="always")
    assert fast.exit_code == 1 and fast.computed == 2  # q1 ok, q2 fails -> stop
    # a bad image fails its own cells only
    broken = go(registry, tmp_path, out="bad", datasets=["broken"], codecs=["fa"], srs=["up"])
    assert broken.exit_code == 1
    assert {f.image for f in broken.failed} == {"broken-one"}
    assert "uint8" in broken.failed[0].error


def test_overwrite_modes(registry, tmp_path):
    go(registry, tmp_path, codecs=["fa"], srs=["up"])
    ENCODES.clear()
    never = go(registry, tmp_path, codecs=["fa"], srs=["up", "bicubic"], overwrite="never")
    assert never.computed == 6 and never.codec_runs == 0
    always = go(registry, tmp_path, codecs=["fa"], srs=["up"], overwrite="always")
    assert always.computed == 6 and always.codec_runs == 6
    with pytest.raises(JcsrError, match="overwrite"):
        go(registry, tmp_path, overwrite="sometimes")


def test_dry_run_plans_without_computing(registry, tmp_path):
    go(registry, tmp_path, codecs=["fa"], srs=["up"])
    ENCODES.clear()
    out = io.StringIO()
    summary = run(registry=registry, datasets=["tiny"], codecs=["fa", "fb"], srs=["up"],
                  output=tmp_path / "out", dry_run=True, stream=out, progress=False,
                  device="cpu")
    assert summary.exit_code == 0 and (summary.cells, summary.cached) == (12, 6)
    assert not ENCODES
    text = out.getvalue()
    assert "12 cells, 6 to compute, 6 already stored" in text
    assert "codec runs needed: 6" in text
    dry_new = run(registry=registry, datasets=["tiny"], codecs=["fa"], srs=["up"],
                  output=tmp_path / "fresh", dry_run=True, stream=io.StringIO(),
                  progress=False, device="cpu")
    assert dry_new.cells == 6 and not (tmp_path / "fresh").exists()


def test_missing_weights_fail_up_front_when_requested(registry, tmp_path):
    with pytest.raises(WeightsError) as info:
        go(registry, tmp_path, codecs=["fa", "gone"])
    assert "codec gone" in str(info.value) and "put them in /nowhere" in str(info.value)
    assert not ENCODES and not (tmp_path / "out").exists()


def test_default_run_skips_missing_weights_and_writes_a_leaderboard(registry, tmp_path):
    out = io.StringIO()
    summary = run(registry=registry, output=tmp_path / "out", progress=False, stream=out,
                  device="cpu")
    assert summary.exit_code == 0, summary.failed
    assert list(dict.fromkeys((s.kind, s.name) for s in summary.skipped)) == [
        ("codec", "gone"), ("metric", "lpips"), ("metric", "dists")]
    assert "/nowhere" in out.getvalue()
    assert summary.cells == 3 * 2 * 2  # fa x {up, bicubic}
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "fa+up" in board
    exported = tmp_path / "out" / "json" / "tiny" / "fa+bicubic.json"
    assert exported.is_file() and (tmp_path / "out" / "results.csv").is_file()
    assert any(p.suffix == ".png" for p in summary.files)
    _, meta = load_curves(tmp_path / "out")
    assert meta["anchor"] == "fa+bicubic" and meta["config"]["codecs"] == ["fa"]
    assert meta["datasets"]["tiny"]["images"] == 3
    for key in ("harness_version", "plugin_versions", "device", "date"):
        assert meta[key]


def test_adaptive_sr_missing_training_names_the_command(registry, tmp_path, monkeypatch):
    from jcsr_bench.plugins.esrgan import TrainedWeightsMissing

    class Adaptive(FakeSR):
        def for_codec(self, codec_identity, quality):
            if quality == 2:
                raise TrainedWeightsMissing(tmp_path / "q2.pth", quality, codec_identity)
            return FakeSR(shift=quality)

    original = registry.build

    def build(kind, name, **overrides):
        return Adaptive() if (kind, name) == ("sr", "up-bright") else original(
            kind, name, **overrides)

    monkeypatch.setattr(registry, "build", build)
    with pytest.raises(WeightsError) as info:
        go(registry, tmp_path, codecs=["fa"], srs=["up-bright"])
    assert ("`jcsr-bench train-sr --sr up-bright --codec fa --qualities 2`"
            in str(info.value))
    ok = go(registry, tmp_path, codecs=["fa"], srs=["up-bright"], qualities=[1])
    assert ok.exit_code == 0 and ok.computed == 3


RESUME_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_engine import make_registry
from jcsr_bench.engine import run
registry = make_registry(Path(sys.argv[1]), delay=float(sys.argv[2]))
summary = run(registry=registry, datasets=["tiny"], codecs=["slow-a", "slow-b"],
              srs=["up", "bicubic"], output=Path(sys.argv[3]), progress=False, device="cpu")
sys.exit(summary.exit_code)
"""


def _stored(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM cells WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def kill_resume_script(tmp_path: Path, out: Path, delay: str,
                       env: dict[str, str] | None = None) -> int:
    """Run RESUME_SCRIPT into ``out`` in a subprocess, SIGKILL it once 5 cells are stored;
    return how many cells it had stored."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(RESUME_SCRIPT.format(tests=str(TESTS))))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "reg"), delay,
                             str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while _stored(out / "results.sqlite") < 5:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the run never stored 5 cells"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return _stored(out / "results.sqlite")


def test_killed_run_resumes_to_identical_results(tmp_path, monkeypatch):
    ENCODES.clear()
    out = tmp_path / "killed"
    env = dict(os.environ, FAKE_CODEC_LOG=str(tmp_path / "encodes.log"))
    stored = kill_resume_script(tmp_path, out, "0.4", env)
    assert 5 <= stored < 24
    # resume in-process: only the missing cells are computed
    registry = make_registry(tmp_path / "reg")
    resumed = run(registry=registry, datasets=["tiny"], codecs=["slow-a", "slow-b"],
                  srs=["up", "bicubic"], output=out, progress=False, device="cpu",
                  stream=io.StringIO())
    assert resumed.exit_code == 0
    assert resumed.computed == 24 - stored and resumed.cached == stored
    # an uninterrupted run with its own cache gives the same results
    reference = run(registry=registry, datasets=["tiny"], codecs=["slow-a", "slow-b"],
                    srs=["up", "bicubic"], output=tmp_path / "reference", progress=False,
                    device="cpu", stream=io.StringIO(),
                    cache_root=tmp_path / "other-cache")
    assert _values(out / "results.sqlite") == _values(reference.db_path)
    assert len(_values(reference.db_path)) == 24
    runs = sqlite3.connect(out / "results.sqlite").execute(
        "SELECT status FROM runs ORDER BY id").fetchall()
    assert [r[0] for r in runs] == ["running", "finished"]  # the killed one never ended


def test_scale_one_no_sr_reproduces_compressai_evaluator(tmp_path):
    """``--scale 1 --sr none`` on sides that are multiples of 64 = CompressAI's evaluator."""
    import json

    from compressai.zoo import bmshj2018_hyperprior
    from compressai.zoo.image import model_architectures
    from compressai.zoo.pretrained import load_pretrained

    from jcsr_bench.images import load_image, save_image
    from jcsr_bench.plugins.compressai_codec import CompressAICodec, header_size
    from jcsr_bench.registry import load_registry

    threads = torch.get_num_threads()
    from compressai.utils.eval_model.__main__ import inference, read_image

    torch.set_num_threads(threads)  # the evaluator module sets 1 at import
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = bmshj2018_hyperprior(quality=1, pretrained=False)
    weights = tmp_path / "rnd-q1.pth.tar"
    torch.save(net.state_dict(), weights)
    pics = tmp_path / "pics"
    pics.mkdir()
    for i, (h, w) in enumerate([(192, 256), (256, 192)]):
        save_image(sample_image(h, w, seed=10 + i), pics / f"p{i}.png")
    user = tmp_path / "user.yaml"
    user.write_text(f"codecs:\n  rnd: {{type: compressai, arch: bmshj2018-hyperprior, "
                    f"qualities: [1], weights: {weights}}}\n"
                    f"datasets:\n  pics: {{type: folder, root: {pics}}}\n")
    registry = load_registry([user], manager=PluginManager(entry_points=False))
    summary = run(registry=registry, datasets=["pics"], codecs=["rnd"], srs=["none"], scale=1,
                  output=tmp_path / "out", progress=False, stream=io.StringIO(), device="cpu")
    assert summary.exit_code == 0, summary.failed
    ref = model_architectures["bmshj2018-hyperprior"].from_state_dict(
        load_pretrained(torch.load(weights, weights_only=True))).eval()
    ref.update(force=True)
    codec = CompressAICodec(qualities=[1], weights=str(weights))
    rows = {r["image"]: r["values"] for r in load_rows(summary.db_path)}
    expected_all = []
    for i in range(2):
        path = pics / f"p{i}.png"
        expected = inference(ref, read_image(path))
        expected_all.append(expected)
        got = rows[f"p{i}"]
        assert got["psnr-rgb"] == pytest.approx(expected["psnr-rgb"], abs=1e-6)
        assert got["ms-ssim-rgb"] == pytest.approx(expected["ms-ssim-rgb"], abs=1e-6)
        payload = codec.encode(load_image(path), 1)
        assert got["bits"] == 8 * len(payload)
        header_bpp = 8 * header_size(payload) / (192 * 256)
        assert got["bpp"] - header_bpp == pytest.approx(expected["bpp"], abs=1e-12)
        assert got["bpp"] == got["bpp_lr"]
    exported = json.loads((tmp_path / "out" / "json" / "pics" / "rnd+none.json").read_text())
    mean_psnr = sum(e["psnr-rgb"] for e in expected_all) / 2
    assert exported["results"]["psnr-rgb"][0] == pytest.approx(mean_psnr, abs=1e-6)
    assert set(exported["results"]) >= {"bpp", "psnr-rgb", "ms-ssim-rgb"}


def test_cli_default_run_offline_writes_a_leaderboard(tmp_path):
    """The README's main-job command on the embedded default suite, offline (subprocess)."""
    from helpers import run_cli

    out = tmp_path / "results"
    result = run_cli("run", "--limit", "1", "--qualities", "50", "--output", str(out),
                     env={"JCSR_BENCH_LOAD_PLUGINS": "", "JCSR_BENCH_OFFLINE": "1"},
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    board = (out / "leaderboard.md").read_text()
    assert "jpeg+bicubic" in board
    assert "skipped" in result.stdout and "esrgan-b1" in result.stdout
    assert "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth" in result.stdout  # the remedy
    assert (out / "results.sqlite").is_file() and (out / "results.csv").is_file()


def test_train_flag_trains_missing_adaptive_models_first(registry, tmp_path, monkeypatch):
    import jcsr_bench.training.sr as training
    from jcsr_bench.plugins.esrgan import TrainedWeightsMissing

    trained: set = set()
    calls = []

    class Adaptive(FakeSR):
        def for_codec(self, codec_identity, quality):
            if quality not in trained:
                raise TrainedWeightsMissing(tmp_path / "q.pth", quality, codec_identity)
            return FakeSR(shift=quality)

    def fake_train_missing(registry, sr, codec, qualities, *, device):
        calls.append((sr, codec, list(qualities), device))
        trained.update(qualities)

    monkeypatch.setattr(training, "train_missing", fake_train_missing)
    original = registry.build
    monkeypatch.setattr(registry, "build", lambda kind, name, **kw: Adaptive() if (
        kind, name) == ("sr", "up-bright") else original(kind, name, **kw))
    summary = go(registry, tmp_path, codecs=["fa"], srs=["up-bright"], train=True)
    assert calls == [("up-bright", "fa", [1, 2], "cpu")]
    assert summary.exit_code == 0 and summary.computed == 6


def test_sr_options_reach_the_types_that_declare_them(registry, tmp_path):
    extra = tmp_path / "tiled.yaml"
    extra.write_text("sr:\n  rrdb: {type: esrgan, arch: {num_feat: 8, num_block: 1, "
                     "num_grow_ch: 4}}\n")
    registry.add_file(extra)
    plain = go(registry, tmp_path, "plain", codecs=["fa"], srs=["rrdb", "up"])
    tiled = go(registry, tmp_path, "tiled", codecs=["fa"], srs=["rrdb", "up"],
               sr_options={"tile": 4, "tile_overlap": 2, "precision": None})
    assert plain.exit_code == tiled.exit_code == 0
    rows = {r["sr"]: r for r in load_rows(tiled.db_path)}
    by_plain = {r["sr"]: r for r in load_rows(plain.db_path)}
    # the esrgan type takes the tile (a new identity, so new cells); fake-sr is untouched
    assert rows["rrdb"]["cell_key"] != by_plain["rrdb"]["cell_key"]
    assert rows["up"]["cell_key"] == by_plain["up"]["cell_key"]
    assert rows["rrdb"]["values"]["psnr-rgb"] == pytest.approx(
        by_plain["rrdb"]["values"]["psnr-rgb"], abs=0.05)


def test_classical_sr_follows_the_run_scale(registry, tmp_path):
    summary = go(registry, tmp_path, codecs=["fa"], srs=["bicubic", "lanczos"], scale=2)
    assert summary.exit_code == 0, summary.failed
    rows = load_rows(summary.db_path)
    assert {r["sr"] for r in rows} == {"bicubic", "lanczos"}
    for row in rows:  # codec input is the x2-down image; scores are at HR size
        assert row["values"]["bpp_lr"] == pytest.approx(row["values"]["bits"] / (20 * 28))
        assert row["values"]["bpp"] == pytest.approx(row["values"]["bits"] / (40 * 56))
