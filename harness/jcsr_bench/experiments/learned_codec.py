"""The learned codec a reproduction trains first (``reproduce --codec bmshj-samples``).

Offline, CompressAI's published weights cannot be downloaded, so the paper's codec
(bmshj2018-hyperprior, MSE) is trained from scratch by ``train-codec``'s code on crops of
the x4 LR versions of the budget's *training* split (what the codec sees in the joint
pipeline), one model per quality with CompressAI's published lambda. The checkpoints
live in the trained-weights store under a key hashing everything that produced them
(architecture, channels, the lambda table, crops, steps, batch, learning rate, seed, the
training images' content, the training code version), so the next run re-uses them and
an interrupted training continues from its saved state. The codec is trained once, with
its own seed: like the paper's published codec it is fixed while B1/B2 vary by seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.identity import make_identity, safe_filename
from jcsr_bench.kit.paths import trained_dir

#: Codec names ``reproduce`` trains first -> the shipped compressai instance they train.
LEARNED_CODECS = {"bmshj-samples": "bmshj"}


@dataclass(frozen=True)
class CodecRecipe:
    """How a budget trains the learned codec (``train_codec``'s arguments)."""

    steps: int
    batch: int
    patch: int
    lr: float
    channels: tuple[int, int] | None = None  # (N, M); None: CompressAI's per quality
    source: str = "lr"  # crops of the x4 LR images, as the codec sees in the pipeline
    images: int | None = None  # first N training images; None: all
    checkpoint_every: int = 100
    seed: int = 0
    warm_start: bool = False  # each quality starts from the previous one's final network
    descending: bool = False  # train the highest rate first, then warm-start downward
    first_steps: int | None = None  # steps of the first quality trained (None: ``steps``)
    lr_drop: float | None = None  # learning rate x ``gamma`` at this fraction of the steps
    gamma: float = 0.1

    def order(self, qualities: list[int]) -> list[int]:
        """The order the qualities are trained in (and warm-started along)."""
        return sorted(qualities, reverse=True) if self.descending else list(qualities)

    def steps_for(self, index: int) -> int:
        """Steps of the ``index``-th quality trained."""
        return int(self.first_steps) if index == 0 and self.first_steps else self.steps

    def milestones(self, steps: int) -> list[int]:
        return [max(1, int(self.lr_drop * steps))] if self.lr_drop else []

    def hashed(self) -> dict[str, Any]:
        """The recipe as the store key hashes it: fields added later count only when set,
        so the models of recipes without them keep their keys."""
        fields = asdict(self)
        later = {"descending": False, "first_steps": None, "lr_drop": None, "gamma": 0.1}
        return {k: v for k, v in fields.items() if k not in later or v != later[k]}


@dataclass(frozen=True)
class TrainedCodec:
    """The trained models of one recipe, and what this run had to train."""

    name: str
    base: str
    arch: str
    metric: str
    recipe: CodecRecipe
    dataset: str
    lambdas: dict[int, float]
    weights: dict[int, Path]
    key: str
    trained_here: int
    seconds: float

    def registry_entry(self) -> dict[str, Any]:
        """A ``compressai`` codec instance loading these weights."""
        return {"type": "compressai", "arch": self.arch, "metric": self.metric,
                "qualities": sorted(self.weights),
                "weights": {str(q): str(p) for q, p in sorted(self.weights.items())}}


def is_learned(codec: str) -> bool:
    """Whether ``reproduce`` must train ``codec`` before using it."""
    return codec in LEARNED_CODECS


def codec_key(registry: Any, base: str, recipe: CodecRecipe, dataset: str,
              qualities: list[int]) -> str:
    """The store key: every input of the training, the training images by content (and,
    when warm-starting, the ladder: each quality's weights depend on those before it)."""
    from jcsr_bench.training import TRAINING_CODE_VERSION
    from jcsr_bench.training.codec import LAMBDAS

    params = registry.resolve("codecs", base).params
    metric = str(params.get("metric") or "mse")
    return make_identity(
        "codec-train", arch=str(params.get("arch") or "bmshj2018-hyperprior"),
        metric=metric, lambdas=LAMBDAS[metric], recipe=recipe.hashed(),
        ladder=recipe.order(list(qualities)) if recipe.warm_start else None,
        data={"name": dataset, "identity": str(registry.build("datasets", dataset).identity)},
        code=TRAINING_CODE_VERSION)


def train_learned_codec(registry: Any, name: str, recipe: CodecRecipe, dataset: str,
                        qualities: list[int], *, device: str, progress: bool,
                        log: Callable[..., Any]) -> TrainedCodec:
    """Train the qualities the store lacks (resuming any saved state); return them all."""
    from jcsr_bench.training.codec import checkpoint_file, lambda_for, state_file, train_codec

    base = LEARNED_CODECS[name]
    params = registry.resolve("codecs", base).params
    arch = str(params.get("arch") or "bmshj2018-hyperprior")
    metric = str(params.get("metric") or "mse")
    key = codec_key(registry, base, recipe, dataset, qualities)
    folder = trained_dir() / "codecs" / safe_filename(key, max_length=80)
    weights = {q: checkpoint_file(folder, arch, metric, recipe.source, recipe.patch, q)
               for q in qualities}
    missing = [q for q, path in weights.items() if not path.is_file()]
    started = time.perf_counter()
    if missing:
        log(f"training {name} ({arch}, {metric}) at q{missing} on {dataset}, "
            f"{recipe.steps} steps each"
            + (", each quality from the previous one's network" if recipe.warm_start else "")
            + f", into {folder}")
        # Warm-started qualities train one at a time, each from the state before it (in
        # the recipe's order: the highest rate first when descending).
        order = recipe.order(qualities)
        missing = [q for q in order if q in missing]
        batches = ([[q] for q in missing] if recipe.warm_start or recipe.first_steps
                   else [missing])
        for todo in batches:
            index = order.index(todo[0])
            warm = (state_file(weights[order[index - 1]])
                    if recipe.warm_start and index > 0 else None)
            steps = recipe.steps_for(index)
            written = train_codec(
                registry, base, dataset, todo, patch=recipe.patch, steps=steps,
                batch=recipe.batch, device=device, output=folder, resume=True,
                seed=recipe.seed, source=recipe.source, channels=recipe.channels,
                lr=recipe.lr, images=recipe.images, checkpoint_every=recipe.checkpoint_every,
                warm_start=warm, milestones=recipe.milestones(steps), gamma=recipe.gamma,
                progress=progress, log=log)
            if len(written) < len(todo):
                raise JcsrError(f"training {name} was interrupted (its state is saved in "
                                f"{folder}); run the same command again to resume it")
    else:
        log(f"{name}: every quality {qualities} is in the trained-weights store ({folder})")
    return TrainedCodec(name, base, arch, metric, recipe, dataset,
                        {q: lambda_for(metric, q) for q in qualities}, weights, key,
                        len(missing), time.perf_counter() - started)
