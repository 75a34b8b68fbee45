"""The training loop's skeleton, shared by adaptive SR (``fit``) and codec training.

Each trainer brings its own step (losses, optimisers) and state; the skeleton does what
both need the same way: the progress bar, the JSON-lines log every ``log_every`` steps,
a resumable state every ``checkpoint_every`` steps and at the end, Ctrl-C finishing the
current step and saving, and the wall time of the steps this call ran.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from jcsr_bench.kit.devices import resolve_device as resolve_device_name
from jcsr_bench.kit.errors import JcsrError


class TrainingDiverged(JcsrError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu`` (explicit choices validated)."""
    if isinstance(device, torch.device):
        return device
    return torch.device(resolve_device_name(device))


class StopOnSigint:
    """Turn the first Ctrl-C or SIGTERM (schedulers, CI) into a flag checked between steps,
    so the state is saved; a second one aborts."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnSigint:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}


@contextlib.contextmanager
def cudnn_benchmark() -> Iterator[None]:
    """cuDNN autotuning on (fixed-size training batches), the caller's setting restored.

    The flag is process-global and read only by cuDNN: left on, it would change how the
    evaluation that follows (``run --train``) picks its convolution algorithms.
    """
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def append_log(path: Path | None, record: dict[str, Any]) -> None:
    """One JSON line in the training log (none without a path)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


@dataclass
class LoopEnd:
    """Where a loop stopped: ``"done"`` or ``"interrupted"``, the step, the last losses."""

    status: str
    step: int
    losses: dict[str, float]
    seconds: float
    steps_run: int


def run_steps(step_fn: Callable[[int], tuple[dict[str, float], dict[str, Any]]], *,
              start: int, total: int, save: Callable[[int, dict[str, float]], None],
              log: Callable[[int, dict[str, float], dict[str, Any]], None],
              log_every: int, checkpoint_every: int, desc: str, progress: bool,
              stopper: Callable[[], Any] | None = None) -> LoopEnd:
    """Call ``step_fn(step)`` from ``start`` to ``total``: it runs one step and returns
    its losses and the extra fields of its log line. ``save(step, losses)`` writes the
    resumable state (every ``checkpoint_every`` steps before the end, and once at the
    end); ``log(step, losses, extra)`` every ``log_every`` steps and at the last one."""
    from tqdm import tqdm

    step, last = start, {}
    started, status = time.perf_counter(), "done"
    bar = tqdm(total=total, initial=step, desc=desc, unit="step", disable=not progress,
               dynamic_ncols=True)
    with (stopper or StopOnSigint)() as stop:
        while step < total:
            last, extra = step_fn(step)
            step += 1
            bar.update(1)
            if step % log_every == 0 or step == total:
                bar.set_postfix({k: f"{v:.4g}" for k, v in last.items()}, refresh=False)
                log(step, last, extra)
            if step % checkpoint_every == 0 and step < total:
                save(step, last)
            if stop.requested and step < total:
                status = "interrupted"
                break
    bar.close()
    save(step, last)
    return LoopEnd(status, step, last, time.perf_counter() - started, step - start)
