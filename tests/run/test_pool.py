"""The local executor's worker processes: same numbers as in-process, kill-safe.

``--workers N`` (the default on a machine with more than one core) runs units in worker
processes; the driver still records every result, so results, resume and failures
behave as with one process.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import ENCODES, _values, go, make_registry
from test_engine import kill_resume_script

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.results.store import load_rows
from jcsr_bench.run import engine
from jcsr_bench.run.engine import run
from jcsr_bench.run.execute import LocalExecutor, PoolExecutor, pickled_modules


@pytest.fixture
def registry(tmp_path):
    ENCODES.clear()
    return make_registry(tmp_path / "reg")


@pytest.mark.slow
def test_worker_processes_store_bit_identical_results(registry, tmp_path):
    serial = go(registry, tmp_path, "serial", workers=1)
    pool = go(registry, tmp_path, "pool", workers=2, cache_root=tmp_path / "pool-cache")
    assert serial.exit_code == pool.exit_code == 0, pool.failed
    assert pool.computed == serial.computed == 24 and pool.codec_runs == 12
    assert _values(serial.db_path) == _values(pool.db_path)
    assert pool.execution == {"executor": "local", "workers": 2, "threads_per_worker": 1}
    # the driver wrote the codec cache: a second pooled run computes no codec output
    again = go(registry, tmp_path, "again", workers=2, cache_root=tmp_path / "pool-cache")
    assert (again.codec_runs, again.codec_cache_hits) == (0, 12)
    assert _values(again.db_path) == _values(serial.db_path)


def test_a_killed_worker_loses_only_its_unit(registry, tmp_path):
    summary = go(registry, tmp_path, codecs=["crashy"], workers=2)
    rows = load_rows(summary.db_path)
    assert summary.exit_code == 1 and len(rows) == 12
    lost = [r for r in rows if r["status"] != "ok"]
    assert {(r["quality"], r["error"]) for r in lost} == {
        (2, "worker process died (killed by SIGKILL)")}
    assert len(lost) == 6  # 3 images x 2 SR at quality 2; every quality-1 cell is stored
    assert all(r["status"] == "ok" for r in rows if r["quality"] == 1)


@pytest.mark.slow
def test_a_run_killed_with_workers_resumes_to_identical_results(tmp_path):
    out = tmp_path / "killed"
    stored = kill_resume_script(tmp_path, out, "0.3", dict(os.environ), workers=2)
    assert 5 <= stored < 24
    registry = make_registry(tmp_path / "reg")
    common = dict(registry=registry, datasets=["tiny"], codecs=["slow-a", "slow-b"],
                  srs=["up", "bicubic"], progress=False, device="cpu", stream=io.StringIO())
    resumed = run(output=out, workers=2, **common)
    assert resumed.exit_code == 0 and resumed.computed == 24 - stored
    reference = run(output=tmp_path / "reference", workers=1,
                    cache_root=tmp_path / "other-cache", **common)
    assert _values(out / "results.sqlite") == _values(reference.db_path)


def test_components_that_cannot_travel_name_the_remedy(registry, tmp_path):
    class Local:  # defined in a function: a worker process cannot import it
        identity = "local"

    codec = registry.build("codecs", "fa")
    with pytest.raises(JcsrError, match="cannot be sent to worker processes.*--workers 1"):
        list(PoolExecutor(2, 1).run(_plan_stub(), _context(codec, Local()), lambda _: None))


def _plan_stub():
    class Plan:
        datasets: list = []
    return Plan()


def _context(codec, extra):
    from jcsr_bench.run.workunit import UnitContext

    return UnitContext(4, "matlab", "cpu", {"fa": codec, "x": extra}, {}, [])


@pytest.mark.parametrize("cores, units, kwargs, expected", [
    (4, 9, {}, ("pool", 4, 1)),            # default: a worker per core, one thread each
    (4, 3, {}, ("pool", 3, 1)),            # never more workers than units
    (4, 1, {}, ("local", 1, None)),        # one unit: no process to start
    (1, 9, {}, ("local", 1, None)),        # one core
    (4, 9, {"threads": 2}, ("local", 1, 2)),  # --threads alone: this process
    (4, 9, {"workers": 2, "threads_per_worker": 2}, ("pool", 2, 2)),
    (4, 9, {"workers": 1}, ("local", 1, None)),
])
def test_default_executor_uses_every_core_with_processes(monkeypatch, cores, units, kwargs,
                                                         expected):
    monkeypatch.setattr(engine, "usable_cores", lambda: cores)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("jcsr_bench.kit.devices.usable_cores", lambda: cores)
    args = {"threads": None, "workers": None, "threads_per_worker": None, **kwargs}
    runner = engine._executor("local", args["threads"], args["workers"],
                              args["threads_per_worker"], 0.0, None, units)
    kind, workers, threads = expected
    assert isinstance(runner, PoolExecutor if kind == "pool" else LocalExecutor)
    described = runner.describe()
    assert described["workers"] == workers
    assert described["threads_per_worker"] == (threads or cores)
    with pytest.raises(JcsrError, match="--ray-address need"):
        engine._executor("local", None, 2, None, 0.0, "auto", units)


@pytest.mark.slow  # a fresh interpreter importing torch: seconds
def test_a_run_without_compressai_components_never_imports_it(tmp_path):
    """compressai's import pulls in torch_geometric (~5 s, ~0.3 GB): only its codecs pay."""
    script = tmp_path / "check.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from pathlib import Path\n"
        "from fakes import make_registry\n"
        "from jcsr_bench.run.engine import run\n"
        "summary = run(registry=make_registry(Path(sys.argv[1])), datasets=['tiny'],\n"
        "              codecs=['fa'], srs=['up', 'bicubic'], output=Path(sys.argv[2]),\n"
        "              progress=False, device='cpu', workers=1)\n"
        "assert summary.exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('compressai', 'torch_geometric')))\n")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "reg"),
                           str(tmp_path / "out")], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_workers_see_the_environment_of_each_run(registry, tmp_path, monkeypatch):
    """The forkserver outlives a run: each worker takes the driver's current environment."""
    go(registry, tmp_path, "first", workers=2)  # the forkserver is running by now
    log = tmp_path / "encodes.log"
    monkeypatch.setenv("FAKE_CODEC_LOG", str(log))
    second = go(registry, tmp_path, "second", workers=2, cache_root=tmp_path / "cold")
    assert second.codec_runs == 12
    assert len(log.read_text().splitlines()) == 12  # written by the workers' fake codecs


def test_the_forkserver_preloads_the_packages_a_context_names():
    import collections
    import pickle

    import torch

    payload = pickle.dumps({"c": collections.Counter(), "t": torch.zeros(2),
                            "p": PoolExecutor(2, 1)}, protocol=pickle.HIGHEST_PROTOCOL)
    assert {"collections", "torch", "jcsr_bench"} <= pickled_modules(payload)


@pytest.mark.slow  # a subprocess run interrupted mid-way: seconds
def test_ctrl_c_stops_the_workers_and_keeps_what_was_recorded(tmp_path):
    import signal
    import sqlite3
    import time

    script = tmp_path / "run.py"
    script.write_text(
        "import io, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from pathlib import Path\n"
        "from fakes import make_registry\n"
        "from jcsr_bench.run.engine import run\n"
        "summary = run(registry=make_registry(Path(sys.argv[1]), delay=2.0),\n"
        "              datasets=['tiny'], codecs=['slow-a', 'slow-b'], srs=['up'],\n"
        "              output=Path(sys.argv[2]), progress=False, device='cpu', workers=2,\n"
        "              stream=io.StringIO())\n"
        "print(summary.exit_code)\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "reg"), str(out)],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 90
    while not (out / "results.sqlite").is_file() or sqlite3.connect(
            out / "results.sqlite").execute("SELECT COUNT(*) FROM cells").fetchone()[0] < 2:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert stdout.strip() == "130"  # recorded, reported, exit 130 (as without workers)
    runs = sqlite3.connect(out / "results.sqlite").execute("SELECT status FROM runs").fetchall()
    assert runs == [("interrupted",)]
