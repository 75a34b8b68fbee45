"""What training an adaptive SR instance needs before it can start, found without training.

``run --sr esrgan-b2`` with untrained models must say everything ``train-sr`` would
stumble over, one at a time otherwise: the starting weights (``adapt.init``, e.g. B1's),
the VGG19 weights of the perceptual loss (when the recipe's GAN stage uses it), and the
training dataset. Weights are missing only offline (online, training downloads them).
``train-sr`` itself checks the same weights (and the codec's) before reading any data.
"""

from __future__ import annotations

from typing import Any

from jcsr_bench.artifacts import weights
from jcsr_bench.components import missing_weights_of
from jcsr_bench.kit.errors import one_line
from jcsr_bench.kit.paths import offline
from jcsr_bench.training.config import needs_vgg, resolve_config


def missing_weights(registry: Any, config: dict[str, Any], *,
                    vgg: bool = True) -> list[tuple[str, str]]:
    """``[(what, remedy)]`` for weight files training with ``config`` needs that are not
    on this machine: ``adapt.init``'s and VGG19's (``vgg=False``: the caller brings its
    own feature extractor). Each remedy names the file, its folder and its URL."""
    from jcsr_bench.archs.vgg import VGG19_SOURCE
    needs: list[tuple[str, str]] = []
    init = config.get("init")
    if init:
        try:
            texts = missing_weights_of(registry.build("sr", init))
        except Exception as exc:
            texts = [one_line(exc)]
        needs += [(f"starting weights {init}", text) for text in texts]
        start = registry.resolve("sr", init).params.get("adapt")
        if config.get("joint") and isinstance(start, dict):  # B3: B2's own start too
            needs += missing_weights(registry, resolve_config(start), vgg=False)
    if vgg and needs_vgg(config):
        remedy = weights.missing_remedy(VGG19_SOURCE)
        if remedy:
            needs.append((
                "VGG19 for the perceptual loss",
                f"{remedy}; or train without VGG19: adapt.perceptual_weight 0 (now "
                f"{config['perceptual_weight']}; the cpu preset has none) or l1_steps = steps",
            ))
    return needs


def training_needs(registry: Any, sr: str) -> list[tuple[str, str]]:
    """``[(what, remedy)]`` missing for ``train-sr --sr sr``; empty when ready to train."""
    adapt = registry.resolve("sr", sr).params.get("adapt")
    if not isinstance(adapt, dict):
        return []
    config = resolve_config(adapt)
    needs = missing_weights(registry, config) if offline() else []
    try:
        registry.build("datasets", config["dataset"])
    except Exception as exc:
        needs.append((f"training dataset {config['dataset']}", one_line(exc)))
    return needs

