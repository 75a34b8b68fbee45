"""What training an adaptive SR instance needs before it can start, found without training.

``run --sr esrgan-b2`` with untrained models must say everything ``train-sr`` would
stumble over, one at a time otherwise: the starting weights (``adapt.init``, e.g. B1's),
the VGG19 weights of the perceptual loss (when the recipe's GAN stage uses it), and the
training dataset. Weights are missing only offline (online, training downloads them).
"""

from __future__ import annotations

from typing import Any


def training_needs(registry: Any, sr: str) -> list[tuple[str, str]]:
    """``[(what, remedy)]`` missing for ``train-sr --sr sr``; empty when ready to train."""
    from jcsr_bench import weights
    from jcsr_bench.paths import offline
    from jcsr_bench.requirements import missing
    from jcsr_bench.training.config import needs_vgg, resolve_config
    from jcsr_bench.training.perceptual import VGG19_SOURCE
    from jcsr_bench.workunit import one_line

    adapt = registry.resolve("sr", sr).params.get("adapt")
    if not isinstance(adapt, dict):
        return []
    config = resolve_config(adapt)
    needs: list[tuple[str, str]] = []
    init = config.get("init")
    if init and offline():
        try:
            texts = missing(registry.build("sr", init))
        except Exception as exc:
            texts = [one_line(exc)]
        needs += [(f"starting weights {init}", text) for text in texts]
    if needs_vgg(config) and offline():
        remedy = weights.missing_remedy(VGG19_SOURCE)
        if remedy:
            needs.append(("VGG19 for the perceptual loss", remedy))
    try:
        registry.build("datasets", config["dataset"])
    except Exception as exc:
        needs.append((f"training dataset {config['dataset']}", one_line(exc)))
    return needs
