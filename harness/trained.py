"""The trained-weights store: adaptive SR checkpoints (baseline 2) per codec quality.

Keys are content identities, so retraining with another codec, quality or adaptation
config can never be confused with an existing checkpoint:
``trained_dir()/<adapt identity>/<codec identity hash>/q<quality>.pth`` plus a JSON
sidecar (config, data identity, steps, losses, harness version) beside it.
"""

from __future__ import annotations

from pathlib import Path

from jcsr_bench.identity import digest, safe_filename
from jcsr_bench.paths import trained_dir


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
