"""The Ray executor: same numbers as the local one, resumable across executors, kill-safe.

One local Ray session (2 CPUs, no dashboard) is shared by the module: Ray takes seconds
to start on a busy 2-core machine. The fake components of ``test_engine`` travel to the
workers by value (``register_pickle_by_value``), as an installed plugin would by import.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import fakes
import pytest
import test_engine
from fakes import ENCODES, FakeCodec, _values, go, make_plugin
from test_engine import TESTS, _stored

from jcsr_bench import hookimpl
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import Registry, load_registry
from jcsr_bench.results.store import load_curves, load_rows
from jcsr_bench.run.engine import run

ray = pytest.importorskip("ray")  # part of the test extra; skipped only without it


@pytest.fixture(scope="module")
def ray_session():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(fakes)
    cloudpickle.register_pickle_by_value(test_engine)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def on_ray(registry, tmp_path, out, **kwargs):
    return go(registry, tmp_path, out, executor="ray", workers=2, threads_per_worker=1,
              **kwargs)


@pytest.mark.slow
def test_ray_and_local_store_bit_identical_results_on_the_default_suite(ray_session,
                                                                          tmp_path):
    registry = load_registry([], manager=PluginManager(entry_points=False))
    common = dict(registry=registry, limit=2, qualities=[25, 75], progress=False,
                  device="cpu", threads=1)
    local = run(output=tmp_path / "local", stream=io.StringIO(), **common)
    out = io.StringIO()
    remote = run(output=tmp_path / "ray", stream=out, executor="ray", workers=2,
                 threads_per_worker=1, cache_root=tmp_path / "ray-cache", **common)
    assert local.exit_code == remote.exit_code == 0, remote.failed
    assert remote.computed == local.computed == 16  # samples x2, jpeg+webp x2, 2 classic SR
    assert remote.codec_runs == 8 and remote.codec_cache_hits == 0
    assert _values(local.db_path) == _values(remote.db_path)  # bits, psnr, ms-ssim: exact
    rows = load_rows(remote.db_path)
    assert all(r["values"]["sr_s"] > 0 for r in rows)
    # the codec outputs came back to the driver's cache: a rerun elsewhere needs no codec
    again = run(output=tmp_path / "again", stream=io.StringIO(), executor="ray", workers=2,
                threads_per_worker=1, cache_root=tmp_path / "ray-cache", **common)
    assert (again.codec_runs, again.codec_cache_hits) == (0, 8)
    assert _values(again.db_path) == _values(local.db_path)
    _, meta = load_curves(tmp_path / "ray")
    assert meta["device"] == "cpu on ray (local): 2 workers x 1 thread"
    assert meta["execution"]["threads_per_worker"] == 1
    assert "cpu on ray (local): 2 workers x 1 thread" in (tmp_path / "ray" /
                                                          "leaderboard.md").read_text()


@pytest.mark.slow
def test_a_killed_local_run_resumes_on_ray(ray_session, tmp_path):
    ENCODES.clear()
    out = tmp_path / "killed"
    stored = test_engine.kill_resume_script(tmp_path, out, "0.3")
    registry = fakes.make_registry(tmp_path / "reg")
    resumed = on_ray(registry, tmp_path, out, codecs=["slow-a", "slow-b"])
    assert resumed.exit_code == 0 and resumed.computed == 24 - stored
    reference = go(registry, tmp_path, "reference", codecs=["slow-a", "slow-b"],
                   cache_root=tmp_path / "other-cache")
    assert _values(out / "results.sqlite") == _values(reference.db_path)


@pytest.mark.slow
def test_an_interrupted_ray_run_resumes_locally(ray_session, tmp_path, monkeypatch):
    from jcsr_bench.run.record import Recorder

    registry = fakes.make_registry(tmp_path / "reg")
    original = Recorder.add
    seen = []

    def interrupt_after_five(self, result):
        seen.extend(result.records)
        if len(seen) >= 5:
            raise KeyboardInterrupt  # what Ctrl-C or a kill does to the driver
        return original(self, result)

    monkeypatch.setattr(Recorder, "add", interrupt_after_five)
    interrupted = on_ray(registry, tmp_path, "out")  # recorded, reported, then exit 130
    assert interrupted.exit_code == 130
    monkeypatch.undo()
    stored = _stored(tmp_path / "out" / "results.sqlite")
    assert 0 < stored < 24
    resumed = go(registry, tmp_path, "out")
    assert resumed.computed == 24 - stored and resumed.exit_code == 0
    reference = go(registry, tmp_path, "reference", cache_root=tmp_path / "other-cache")
    assert _values(tmp_path / "out" / "results.sqlite") == _values(reference.db_path)


class PidCodec(FakeCodec):
    """A slow fake codec that writes its worker's process id before each encode."""

    def __init__(self, log: str, **kwargs):
        super().__init__(delay=0.3, **kwargs)
        self.log = log

    def encode(self, image, quality):
        with open(self.log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return super().encode(image, quality)


def _pid_registry(tmp_path: Path, log: Path) -> Registry:
    plugin = types.ModuleType("jcsr_pid_plugin")

    @hookimpl
    def register_codecs(register):
        register("pid-codec", PidCodec, params={"log": str, "step": int})

    plugin.register_codecs = register_codecs
    registry = Registry(PluginManager(entry_points=False,
                                      extra_plugins=(make_plugin(), plugin)))
    path = tmp_path / "pid.yaml"
    path.write_text(textwrap.dedent(f"""
        codecs:
          pa: {{type: pid-codec, log: {log}, step: 8}}
          pb: {{type: pid-codec, log: {log}, step: 12}}
        sr:
          up: {{type: fake-sr}}
        datasets:
          tiny: {{type: fake-images, n: 3}}
        """))
    registry.add_file(path)
    return registry


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(ray_session, tmp_path):
    log = tmp_path / "pids.log"
    log.touch()
    registry = _pid_registry(tmp_path, log)
    killed: list[int] = []

    def kill_one_worker():
        deadline = time.time() + 60
        while time.time() < deadline:
            pids = [int(p) for p in log.read_text().split()]
            if len(pids) >= 3:  # mid-run: some units done, one in flight
                os.kill(pids[-1], signal.SIGKILL)
                killed.append(pids[-1])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    summary = on_ray(registry, tmp_path, "out", codecs=["pa", "pb"], srs=["up", "bicubic"])
    killer.join()
    encodes = len(log.read_text().split())
    assert killed, "no worker was killed"
    assert summary.exit_code == 0, summary.failed
    assert summary.computed == 24 and len(load_rows(summary.db_path)) == 24
    reference = go(registry, tmp_path, "reference", codecs=["pa", "pb"],
                   srs=["up", "bicubic"], cache_root=tmp_path / "other-cache")
    assert _values(summary.db_path) == _values(reference.db_path)
    assert encodes >= 13  # 12 units encode once each; the killed one ran again


CLUSTER_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import fakes
from ray import cloudpickle
cloudpickle.register_pickle_by_value(fakes)
from jcsr_bench.run.engine import run
from jcsr_bench.kit.errors import JcsrError
registry = fakes.make_registry(Path(sys.argv[1]))
summary = run(registry=registry, datasets=["tiny"], codecs=["fa", "fb"], srs=["up", "bicubic"],
              output=Path(sys.argv[2]), progress=False, device="cpu", executor="ray",
              ray_address=sys.argv[3], threads_per_worker=1)
print("computed", summary.computed, summary.execution)
sys.exit(summary.exit_code)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _head_address(head: subprocess.Popen, port: int) -> str:
    """The address the head announces (Ray swaps 127.0.0.1 for the node's own IP)."""
    deadline = time.time() + 120
    node_ip = None
    while time.time() < deadline:
        line = head.stdout.readline()
        if not line:
            raise AssertionError(f"ray start --head ended (exit {head.poll()})")
        match = re.search(r"Local node IP: ([0-9a-fA-F.:]+)", line)
        node_ip = match.group(1) if match else node_ip
        if "Ray runtime started" in line and node_ip:
            return f"{node_ip}:{port}"
    raise AssertionError("ray start --head did not start within 120 s")


@pytest.mark.slow
def test_a_real_multi_process_cluster_via_ray_address(tmp_path):
    """``ray start --head`` on 127.0.0.1 (its own processes), then ``--ray-address``."""
    port = _free_port()
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port",
         str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
         "--include-dashboard", "false", "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0", NO_COLOR="1", RAY_AUTH_MODE="token"))
    try:
        address = _head_address(head, port)
        script = tmp_path / "driver.py"
        script.write_text(textwrap.dedent(CLUSTER_SCRIPT.format(tests=str(TESTS.parent))))
        result = subprocess.run([sys.executable, str(script), str(tmp_path / "reg"),
                                 str(tmp_path / "out"), address],
                                capture_output=True, text=True, timeout=240,
                                env=dict(os.environ, RAY_AUTH_MODE="token"))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "computed 24" in result.stdout and "'workers': 2" in result.stdout
    finally:  # the head and every process it started: its own session
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
    registry = fakes.make_registry(tmp_path / "reg")
    reference = go(registry, tmp_path, "reference", cache_root=tmp_path / "other-cache")
    assert _values(tmp_path / "out" / "results.sqlite") == _values(reference.db_path)


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch):
    registry = fakes.make_registry(tmp_path / "reg")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(JcsrError) as info:
        go(registry, tmp_path, executor="ray")
    assert str(info.value) == ('--executor ray needs Ray, which is not installed: '
                               'pip install "jcsr-bench[ray]"')
    assert not (tmp_path / "out").exists()


def test_ray_flags_need_the_ray_executor(tmp_path):
    registry = fakes.make_registry(tmp_path / "reg")
    with pytest.raises(JcsrError, match="--ray-address need.* --executor ray"):
        go(registry, tmp_path, workers=2, ray_address="auto")
    with pytest.raises(JcsrError, match="--threads must be a positive integer, got 0"):
        go(registry, tmp_path, threads=0)


TRAIN_REGISTRY = """
sr:
  b2-tiny:
    type: esrgan
    arch: {{num_feat: 8, num_block: 1, num_grow_ch: 4}}
    adapt: {{preset: cpu, dataset: train-imgs, steps: 4, l1_steps: 2, batch: 2, patch: 32}}
datasets:
  train-imgs: {{type: folder, root: "{root}"}}
"""


def _training_registry(tmp_path: Path, steps: int = 4) -> Registry:
    import torch

    from jcsr_bench.imaging.images import save_image

    root = tmp_path / "imgs"
    root.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        small = torch.rand(1, 3, 12, 12, generator=gen)
        big = torch.nn.functional.interpolate(small, size=(64, 80), mode="bilinear")[0]
        save_image((big * 255).round().to(torch.uint8), root / f"img{i}.png")
    reg = tmp_path / "reg.yaml"
    reg.write_text(TRAIN_REGISTRY.format(root=root).replace("steps: 4", f"steps: {steps}"))
    return load_registry([reg], manager=PluginManager(entry_points=False))


def _trained(registry: Registry) -> dict:
    from jcsr_bench.artifacts.trained_store import checkpoint_path
    from jcsr_bench.artifacts.weights import load_checkpoint

    component = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")
    return {q: load_checkpoint(checkpoint_path(component.adapt_identity, codec.identity, q)
                               )["params_ema"] for q in (10, 50)}


@pytest.mark.slow
def test_train_sr_on_ray_trains_each_quality_as_the_local_loop_does(ray_session, tmp_path):
    """Concurrent Ray tasks give the same checkpoints as one quality after another."""
    import torch

    from jcsr_bench.artifacts.trained_store import checkpoint_path, sidecar_path
    from jcsr_bench.training.sr import train_sr

    registry = _training_registry(tmp_path)
    extractor = torch.nn.Conv2d(3, 4, 3)  # a stand-in for VGG19 (no weights offline)
    component = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")

    def trained() -> dict:
        return _trained(registry)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray job: bit-identity holds at equal thread counts
    try:
        local = train_sr(registry, "b2-tiny", "jpeg", qualities=[10, 50], device="cpu",
                         feature_extractor=extractor, progress=False, log=lambda *a: None)
    finally:
        torch.set_num_threads(threads)
    expected = trained()
    remote = train_sr(registry, "b2-tiny", "jpeg", qualities=[10, 50], device="cpu",
                      feature_extractor=extractor, progress=False, log=lambda *a: None,
                      executor="ray")
    assert [r.status for r in local] == [r.status for r in remote] == ["done", "done"]
    got = trained()
    for quality in (10, 50):
        assert expected[quality].keys() == got[quality].keys()
        assert all(torch.equal(expected[quality][k], got[quality][k])
                   for k in expected[quality]), quality
        sidecar = sidecar_path(checkpoint_path(component.adapt_identity, codec.identity,
                                               quality))
        assert "ray (cpu, 0 GPU per job)" in sidecar.read_text()
    assert not torch.equal(got[10]["conv_first.weight"], got[50]["conv_first.weight"])


def test_ctrl_c_during_ray_training_saves_every_quality_for_resume(
        ray_session, tmp_path, monkeypatch):
    """Ctrl-C on the driver reaches every task: each stops, saves its exact state, and
    says so (``fit``'s resume from that state is tested in test_training_sr)."""
    import torch

    from jcsr_bench.artifacts.trained_store import checkpoint_path
    from jcsr_bench.training import checkpoint
    from jcsr_bench.training.sr import train_sr

    registry = _training_registry(tmp_path, steps=5000)
    component = registry.build("sr", "b2-tiny")
    codec = registry.build("codecs", "jpeg")
    ckpts = [checkpoint_path(component.adapt_identity, codec.identity, q) for q in (10, 50)]
    real_wait = ray.wait

    def ctrl_c_once_both_train(*args, **kwargs):
        deadline = time.time() + 120
        while not all(c.with_suffix(".log.jsonl").is_file() for c in ckpts):
            assert time.time() < deadline, "the tasks never logged a step"
            time.sleep(0.1)
        monkeypatch.setattr(ray, "wait", real_wait)
        raise KeyboardInterrupt

    monkeypatch.setattr(ray, "wait", ctrl_c_once_both_train)
    stopped = train_sr(registry, "b2-tiny", "jpeg", qualities=[10, 50], device="cpu",
                       feature_extractor=torch.nn.Conv2d(3, 4, 3), progress=False,
                       log=lambda *a: None, executor="ray")
    assert [r.status for r in stopped] == ["interrupted", "interrupted"]
    for result in stopped:
        ckpt = ckpts[(10, 50).index(result.quality)]
        assert 0 < result.step < 5000 and not ckpt.exists()
        state = checkpoint.load(ckpt.with_suffix(".state.pth"))
        assert state["step"] == result.step


class CrashSR(fakes.FakeSR):
    """An SR plugin that takes its worker process down (``os._exit``)."""

    def __init__(self):
        super().__init__()
        self.identity = "crash-sr"

    def upscale(self, image):
        os._exit(3)


@pytest.mark.slow  # ~5 worker restarts
def test_a_crashing_plugin_fails_only_its_own_cells_and_is_named(ray_session, tmp_path):
    plugin = types.ModuleType("jcsr_crash_plugin")

    @hookimpl
    def register_sr_models(register):
        register("crash-sr", CrashSR, params={})

    plugin.register_sr_models = register_sr_models
    registry = Registry(PluginManager(entry_points=False,
                                      extra_plugins=(make_plugin(), plugin)))
    path = tmp_path / "crash.yaml"
    path.write_text(textwrap.dedent("""
        codecs:
          fa: {type: fake-codec, step: 8, qualities: [1]}
        sr:
          up: {type: fake-sr}
          crash: {type: crash-sr}
        datasets:
          tiny: {type: fake-images, n: 1}
        """))
    registry.add_file(path)
    summary = on_ray(registry, tmp_path, "out", codecs=["fa"], srs=["up", "crash"])
    assert summary.exit_code == 1
    assert [f.sr for f in summary.failed] == ["crash"]  # before: 'up' failed with it
    assert "while computing codec fa q=1 with SR crash alone" in summary.failed[0].error
    ok = [r for r in load_rows(summary.db_path) if r["status"] == "ok"]
    assert [r["sr"] for r in ok] == ["up"]
