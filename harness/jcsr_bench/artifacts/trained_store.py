"""The trained-weights store: adaptive SR checkpoints (baseline 2) per codec quality.

Keys are content identities of what a model was trained from (see
``jcsr_bench.training.trained_from``), so retraining with other init weights, data,
hyper-parameters, codec or quality can never be confused with an existing checkpoint:
``trained_dir()/<adapt identity>/<codec identity hash>/q<quality>.pth`` plus a JSON
sidecar beside it saying, readably, what went into the key. Nothing is ever overwritten
by a different configuration: old models stay under their own keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jcsr_bench.kit.errors import WeightsError
from jcsr_bench.kit.identity import digest, safe_filename
from jcsr_bench.kit.paths import trained_dir


def checkpoint_path(adapt_identity: str, codec_identity: str, quality: object) -> Path:
    """Where the adapted SR weights for (adaptation, codec, quality) live."""
    return (
        trained_dir()
        / safe_filename(adapt_identity)
        / digest(codec_identity)
        / f"q{safe_filename(str(quality))}.pth"
    )


def sidecar_path(checkpoint: Path) -> Path:
    """The JSON metadata file written beside a trained checkpoint."""
    return checkpoint.with_suffix(".json")


@dataclass(frozen=True)
class StoredModel:
    """One finished checkpoint of the store and its sidecar (``{}`` if unreadable)."""

    checkpoint: Path
    meta: dict[str, Any]

    def summary(self) -> dict[str, str]:
        """One readable row: which instance, for what, trained from what."""
        meta, source = self.meta, self.meta.get("trained_from")
        config = meta.get("config") or {}
        if source:
            init, data = source.get("init") or {}, source.get("dataset") or {}
            init_text = (f"{init.get('name')} ({_short(init.get('identity'))})"
                         if init.get("name")
                         else f"random, {init.get('random')}")
            data_text = f"{data.get('name')} ({data.get('identity')})"
        else:  # a model stored before keys were content identities
            init_text = f"{config.get('init') or 'random'} (content not recorded)"
            data_text = f"{config.get('dataset', '?')} (content not recorded)"
        return {
            "sr": str(meta.get("sr", "?")),
            "codec": str(meta.get("codec", "?")),
            "quality": str(meta.get("quality", "?")),
            "init": init_text,
            "dataset": data_text,
            "steps": str(meta.get("steps", "?")),
            "key": str(meta.get("adapt_identity", self.checkpoint.parent.parent.name)),
            "created": str(meta.get("created", "?")),
            "path": str(self.checkpoint),
        }


def _short(identity: Any) -> str:
    """``sha256:<64 hex>`` -> its first 16 hex digits (a table column, not a check)."""
    text = str(identity)
    return text[: len("sha256:") + 16] if text.startswith("sha256:") else text


def stored_models(root: Path | None = None) -> list[StoredModel]:
    """Every finished checkpoint in the store (``root``: default ``trained_dir()``)."""
    root = trained_dir() if root is None else root
    models = []
    for checkpoint in sorted(root.glob("*/*/q*.pth")):
        if checkpoint.name.endswith(".state.pth"):
            continue  # an unfinished training state, not a model
        try:
            meta = json.loads(sidecar_path(checkpoint).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        models.append(StoredModel(checkpoint, meta if isinstance(meta, dict) else {}))
    return models


class TrainedWeightsMissing(WeightsError):
    """Adapted (baseline 2) weights for one (codec, quality) have not been trained yet.

    ``path`` is where ``train-sr`` writes them; the engine adds the exact command, since
    only it knows the registry instance names.
    """

    def __init__(self, path: Path, quality: Any, codec_identity: str = "") -> None:
        self.path = Path(path)
        self.quality = quality
        self.codec_identity = codec_identity
        super().__init__(
            f"no adapted SR weights for codec {codec_identity or '?'} at quality {quality!r} "
            f"(expected {self.path}); train them with `jcsr-bench train-sr`"
        )
