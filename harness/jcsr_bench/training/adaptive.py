"""Training an adaptive SR instance, whichever baseline it is: B2 (``training.sr``) or B3,
joint decoding (``adapt.joint``: ``training.joint``).

The dispatch lives here, above both, so the two import one way only: ``training.joint``
builds on ``training.sr``'s recipe and helpers, and ``training.sr`` knows nothing of it.
``train-sr``, ``run --train`` and ``reproduce`` call this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jcsr_bench.training.joint import train_joint
from jcsr_bench.training.sr import TrainResult, train_sr


def train_adaptive(registry: Any, sr: str, codec: str, dataset: str | None,
                   qualities: Sequence[Any] | None, **options: Any) -> list[TrainResult]:
    """``train_joint`` for an instance with ``adapt.joint``, else ``train_sr`` (same
    arguments, same results)."""
    adapt = registry.resolve("sr", sr).params.get("adapt")
    joint = isinstance(adapt, dict) and adapt.get("joint")  # train_sr explains a missing one
    trainer = train_joint if joint else train_sr
    return trainer(registry, sr, codec, dataset, qualities, **options)


def train_missing(registry: Any, sr: str, codec: str, qualities: Sequence[Any] | None, *,
                  device: Any = "auto", **ray_options: Any) -> list[TrainResult]:
    """Train the qualities of ``sr`` x ``codec`` with no checkpoint yet (``run --train``).

    Uses the ``adapt`` section as is (its ``dataset`` and preset); an unfinished state
    from an earlier run is resumed. ``ray_options`` (``executor``, ``gpus_per_job``,
    ``ray_address``) as for :func:`jcsr_bench.training.sr.train_sr`.
    """
    return train_adaptive(registry, sr, codec, None, qualities, device=device,
                          only_missing=True, **ray_options)
