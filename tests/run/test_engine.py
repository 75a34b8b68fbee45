"""The evaluation engine on fake components that count their calls.

Fakes implement the component protocols (jcsr_bench.components): a lossy quantising
codec (self-contained payload), a nearest-neighbour SR model, a tiny in-memory dataset.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from fakes import (
    ENCODES,
    FakeCodec,
    FakeImages,
    FakeSR,
    _values,
    go,
    make_registry,
)

from jcsr_bench.imaging.quality import psnr_rgb
from jcsr_bench.kit.errors import JcsrError, WeightsError
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.results.store import load_curves, load_rows
from jcsr_bench.run.engine import run
from jcsr_bench.testing import sample_image

TESTS = Path(__file__).resolve().parent
@pytest.fixture
def registry(tmp_path):
    ENCODES.clear()
    return make_registry(tmp_path / "reg")


def test_codec_runs_once_per_codec_quality_image(registry, tmp_path):
    summary = go(registry, tmp_path, workers=1)  # in-process: ENCODES counts its calls
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
    from jcsr_bench.imaging.lr import make_lr

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_swapping_weights_recomputes_only_that_codec(registry, tmp_path):
    first = go(registry, tmp_path, codecs=["weighted", "fb"])
    assert first.computed == 24
    ENCODES.clear()
    (tmp_path / "reg" / "weights.bin").write_bytes(b"version 2")
    registry2 = make_registry(tmp_path / "reg")
    second = go(registry2, tmp_path, codecs=["weighted", "fb"], workers=1)  # counted
    assert second.computed == 12 and second.cached == 12
    assert second.codec_runs == 6 and sum(ENCODES.values()) == 6
    new_identity = registry2.build("codecs", "weighted").identity
    assert {key[0] for key in ENCODES} == {new_identity}
    rows = load_rows(second.db_path)
    assert len(rows) == 24  # replaced, not duplicated


@pytest.mark.slow
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
              overwrite="always", workers=1)  # one process: units in plan order
    assert fast.exit_code == 1 and fast.computed == 2  # q1 ok, q2 fails -> stop
    # a bad image fails its own cells only
    broken = go(registry, tmp_path, out="bad", datasets=["broken"], codecs=["fa"], srs=["up"])
    assert broken.exit_code == 1
    assert {f.image for f in broken.failed} == {"broken-one"}
    assert "uint8" in broken.failed[0].error


@pytest.mark.slow
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
    from jcsr_bench.artifacts.trained_store import TrainedWeightsMissing

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
sys.path.insert(0, {root!r})
from fakes import make_registry
from jcsr_bench.run.engine import run
registry = make_registry(Path(sys.argv[1]), delay=float(sys.argv[2]))
summary = run(registry=registry, datasets=["tiny"], codecs=["slow-a", "slow-b"],
              srs=["up", "bicubic"], output=Path(sys.argv[3]), progress=False, device="cpu",
              workers=int(sys.argv[4]) if len(sys.argv) > 4 else None)
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
                       env: dict[str, str] | None = None, workers: int | None = None) -> int:
    """Run RESUME_SCRIPT into ``out`` in a subprocess (default or ``workers`` workers),
    SIGKILL it once 5 cells are stored; return how many cells it had stored."""
    script = tmp_path / "run.py"
    text = RESUME_SCRIPT.format(tests=str(TESTS), root=str(TESTS.parent))
    script.write_text(textwrap.dedent(text))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "reg"), delay,
                             str(out)] + ([str(workers)] if workers else []), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while _stored(out / "results.sqlite") < 5:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the run never stored 5 cells"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return _stored(out / "results.sqlite")


@pytest.mark.slow
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


@pytest.mark.slow
def test_scale_one_no_sr_reproduces_compressai_evaluator(tmp_path):
    """``--scale 1 --sr none`` on sides that are multiples of 64 = CompressAI's evaluator."""
    import json

    from compressai.zoo import bmshj2018_hyperprior
    from compressai.zoo.image import model_architectures
    from compressai.zoo.pretrained import load_pretrained

    from jcsr_bench.imaging.images import load_image, save_image
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench_plugins.codecs.compressai_codec import CompressAICodec, header_size

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


@pytest.mark.slow
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
    import jcsr_bench.training.adaptive as training
    from jcsr_bench.artifacts.trained_store import TrainedWeightsMissing

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


@pytest.mark.slow
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
