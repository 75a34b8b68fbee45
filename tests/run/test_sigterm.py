"""SIGTERM (schedulers, CI) is handled as Ctrl-C, in real subprocesses (issue 26.5)."""

from __future__ import annotations

import contextlib
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
from fakes import make_registry

from jcsr_bench.run.engine import run

TESTS = Path(__file__).resolve().parent.parent

RUN_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import pytest
from fakes import make_registry
from jcsr_bench.cli.main import _sigterm_as_sigint
from jcsr_bench.run.engine import run
registry = make_registry(Path(sys.argv[1]), delay=float(sys.argv[2]))
with _sigterm_as_sigint():  # what `jcsr-bench run` runs under
    summary = run(registry=registry, datasets=["tiny"], codecs=["slow-a", "slow-b"],
                  srs=["up", "bicubic"], output=Path(sys.argv[3]), progress=False,
                  device="cpu")
sys.exit(summary.exit_code)
"""


def _stored(db: Path) -> int:
    if not db.is_file():
        return 0
    try:  # closed at once: an open reader would keep the writer's -wal alive
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            return conn.execute("SELECT COUNT(*) FROM cells WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _statuses(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        conn.close()


@pytest.mark.slow  # ~20 s: a subprocess run, then the resume
def test_sigterm_finishes_a_run_cleanly_and_resume_completes(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(RUN_SCRIPT.format(tests=str(TESTS))))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "reg"), "0.3",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while _stored(out / "results.sqlite") < 3:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the run never stored 3 cells"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    text = stdout.decode() + stderr.decode()
    assert proc.returncode == 130, text  # was -15 (killed), store and reports as left
    assert "Traceback" not in text and "interrupted (Ctrl-C or SIGTERM)" in text
    db = out / "results.sqlite"
    assert not db.with_name("results.sqlite-wal").exists()
    assert not db.with_name("results.sqlite-shm").exists()
    assert _statuses(db) == ["interrupted"]
    assert (out / "leaderboard.md").is_file()  # the reports of what was stored
    stored = _stored(db)
    resumed = run(registry=make_registry(tmp_path / "reg"), datasets=["tiny"],
                  codecs=["slow-a", "slow-b"], srs=["up", "bicubic"], output=out,
                  progress=False, device="cpu", stream=io.StringIO())
    assert resumed.exit_code == 0 and resumed.computed == 24 - stored
    assert _statuses(db) == ["interrupted", "finished"]


TRAIN_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {training!r})
from test_training_sr import config, pairs, tiny_generator
from jcsr_bench.training import checkpoint, losses, sr
real, calls = losses.pixel_l1, []
def terminating(output, target):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would
    return real(output, target)
losses.pixel_l1 = terminating
result = sr.fit(tiny_generator(), pairs(), config(steps=5, l1_steps=5, checkpoint_every=100),
                state_path=sys.argv[1], progress=False)
print(result.status, result.step, checkpoint.load(sys.argv[1])["step"])
"""


@pytest.mark.slow  # ~15 s: a training subprocess
def test_sigterm_in_training_saves_the_state_like_ctrl_c(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAIN_SCRIPT.format(training=str(TESTS / "training"))))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "s.pth")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr  # was -15: killed, steps since the save lost
    assert done.stdout.split() == ["interrupted", "2", "2"]
