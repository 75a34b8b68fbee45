"""Devices: resolve ``--device`` and time stages honestly (CUDA work is asynchronous).

A GPU kernel returns before it finishes, so wall time is measured between two
synchronisation points; on the CPU synchronising is a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from jcsr_bench.kit.errors import JcsrError

T = TypeVar("T")


def resolve_device(spec: str | None = "auto") -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; validate explicit choices."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise JcsrError(
            f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N ({exc})"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise JcsrError(
                f"device {spec!r} requested but CUDA is not available on this machine; "
                "use --device cpu (or auto)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise JcsrError(
                f"device {spec!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return str(device)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def default_threads(workers: int = 1) -> int:
    """Torch intra-op threads per worker: ``OMP_NUM_THREADS`` when set, else an equal
    share of the usable cores (never more: processes that oversubscribe cores fight)."""
    import os

    try:
        threads = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        threads = 0
    return threads if threads > 0 else max(1, usable_cores() // max(1, workers))


def check_threads(value: int | None, flag: str) -> int | None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise JcsrError(f"{flag} must be a positive integer, got {value!r}")
    return value


def describe_device(device: str) -> str:
    """A human-readable device name for run metadata (``cuda:0 (NVIDIA H100 ...)``)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, torch threads " \
           f"{torch.get_num_threads()})"


def synchronize(device: str | None) -> None:
    """Wait for queued CUDA work on ``device`` (no-op on the CPU)."""
    if device and device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize(torch.device(device))


def timed(fn: Callable[..., T], *args: Any, device: str | None = None) -> tuple[T, float]:
    """``(fn(*args), seconds)``, with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args)
    synchronize(device)
    return result, time.perf_counter() - start
