"""One run at a time per output folder: a second run is told who holds it, or waits."""

import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import run_cli, tiny_registry
from jcsr_bench.cli.main import main
from jcsr_bench.run.output_lock import LOCK_NAME, OutputBusy, output_lock

HOLDER = textwrap.dedent("""
    import pathlib, sys, time
    from jcsr_bench.run.output_lock import output_lock
    with output_lock(pathlib.Path(sys.argv[1])):
        print("locked", flush=True)
        release = pathlib.Path(sys.argv[2])
        while not release.exists():
            time.sleep(0.02)
""")


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path/out`` until ``release`` exists."""
    out, release = tmp_path / "out", tmp_path / "release"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(release)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield process, out, release
    release.touch()
    process.kill()
    process.wait(timeout=30)


def tiny_run(tmp_path, out, *extra):
    return ["run", "--registry", str(tiny_registry(tmp_path / "data")), "--dataset", "tiny",
            "--codec", "jpeg", "--sr", "bicubic", "--qualities", "50", "--output", str(out),
            *extra]


def test_a_second_run_stops_naming_the_other_process(holder, tmp_path):
    process, out, _ = holder
    result = run_cli(*tiny_run(tmp_path, out))
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    assert f"output folder {out} is in use by another jcsr-bench run" in err
    assert f"pid {process.pid} on {socket.gethostname()}, started 20" in err
    assert "--wait" in err
    assert not (out / "results.sqlite").exists()


@pytest.mark.slow
def test_wait_starts_when_the_other_run_ends(holder, tmp_path):
    process, out, release = holder
    waiter = subprocess.Popen([sys.executable, "-m", "jcsr_bench.cli.main",
                               *tiny_run(tmp_path, out, "--wait")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = waiter.stderr.readline()
    assert f"waiting for the run using {out} to finish (pid {process.pid}" in line
    assert waiter.poll() is None and not (out / "results.sqlite").exists()
    release.touch()
    assert process.wait(timeout=30) == 0
    stdout, stderr = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, stderr
    assert "1 cells: 1 computed" in stdout


def test_a_killed_holder_never_blocks(holder, tmp_path):
    process, out, _ = holder
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert (out / LOCK_NAME).read_text()  # its details are still in the file
    assert main(tiny_run(tmp_path, out)) == 0  # this process, right away


def test_dry_run_is_not_blocked(holder, tmp_path, capsys):
    _, out, _ = holder
    assert main(tiny_run(tmp_path, out, "--dry-run")) == 0
    assert "dry run: nothing computed" in capsys.readouterr().out


def test_lock_is_free_again_after_the_block_and_after_an_error(tmp_path):
    with pytest.raises(RuntimeError), output_lock(tmp_path):
        raise RuntimeError("a run failed")
    with output_lock(tmp_path) as path:
        assert f'"pid": {os.getpid()}' in path.read_text()
        with pytest.raises(OutputBusy, match=f"pid {os.getpid()}"), output_lock(tmp_path):
            pass  # a second holder in the same process is refused too
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released: no stale holder to report


def test_waiting_is_interruptible(holder, tmp_path):
    _, out, _ = holder
    waiter = subprocess.Popen([sys.executable, "-m", "jcsr_bench.cli.main",
                               *tiny_run(tmp_path, out, "--wait")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              # a background shell hands children SIGINT ignored: undo it
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "waiting" in waiter.stderr.readline()
    time.sleep(0.2)
    waiter.send_signal(signal.SIGINT)
    _, stderr = waiter.communicate(timeout=60)
    assert waiter.returncode == 130 and "interrupted" in stderr


def test_a_folder_the_lock_created_and_nothing_filled_is_removed(tmp_path):
    with output_lock(tmp_path / "empty"):
        pass  # a run that stopped before any compute (missing pieces)
    assert not (tmp_path / "empty").exists()
    with output_lock(tmp_path / "filled") as path:
        (path.parent / "results.sqlite").write_text("x")
    assert (tmp_path / "filled" / "results.sqlite").exists()
    (tmp_path / "mine").mkdir()
    with output_lock(tmp_path / "mine"):
        pass
    assert (tmp_path / "mine").is_dir()  # the user's own folder stays


def test_a_run_stopped_by_missing_pieces_leaves_no_results_folder(tmp_path, monkeypatch):
    from jcsr_bench.api import run_benchmark
    from jcsr_bench.kit.errors import WeightsError
    from jcsr_bench.plugin.manager import PluginManager
    from jcsr_bench.plugin.registry import load_registry

    monkeypatch.setenv("JCSR_BENCH_DATA_ROOT", str(tmp_path / "no-data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch"))
    registry = load_registry([], manager=PluginManager(entry_points=False))
    with pytest.raises(WeightsError):
        run_benchmark(output=tmp_path / "jcsr-results", registry=registry, codecs="jpeg",
                      srs="esrgan-b1", qualities=[50], limit=1, device="cpu", stream=io.StringIO())
    assert not (tmp_path / "jcsr-results").exists()
