"""Devices: resolve ``--device`` and time stages honestly (CUDA work is asynchronous).

A GPU kernel returns before it finishes, so wall time is measured between two
synchronisation points; on the CPU synchronising is a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from jcsr_bench.errors import JcsrError

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
