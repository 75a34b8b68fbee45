"""What an adaptive SR model is trained from: its content identity (baseline 2's key).

The trained-weights store keys a checkpoint by *what produced it*, never by names: the
init model's content identity (its weights hash, or seeded random init + architecture),
the training dataset's content identity, every training hyper-parameter after CLI
overrides (LR kernel and scale included) and :data:`TRAINING_CODE_VERSION`. The codec
identity and quality complete the key (``jcsr_bench.artifacts.trained_store.checkpoint_path``). So
pointing ``esrgan-b1`` at other weights, changing one training image or passing
``train-sr --steps N`` each gives a new key: the models trained before stay in the store
under their own keys and are simply no longer the ones a run asks for.

Computing it is cheap (plan time): weight files and dataset images are identified by
their cached SHA-256 (a URL weight source by its pinned hash, with no file access); no
weights are loaded and no image is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jcsr_bench.kit.errors import DataError, JcsrError, PluginError, RegistryError, WeightsError
from jcsr_bench.kit.identity import make_identity
from jcsr_bench.training import TRAINING_CODE_VERSION
from jcsr_bench.training.config import resolve_config

#: Config keys that never change the trained weights (bookkeeping), and the names whose
#: content identities are hashed instead.
NOT_HASHED = {"checkpoint_every", "log_every", "init", "dataset", "preset"}


@dataclass(frozen=True)
class TrainingIdentity:
    """The key of one adaptive configuration and, readably, what went into it."""

    identity: str  # "esrgan-adapt:<hash>": the trained-weights store folder
    config: dict[str, Any]  # the effective config (names of init and dataset included)
    init: dict[str, Any]  # {"name", "identity"} or {"random": ..., "identity"}
    dataset: dict[str, Any]  # {"name", "identity"}
    network: dict[str, Any]  # the model family's own fields (architecture, impl version)
    code_version: int = TRAINING_CODE_VERSION

    def record(self) -> dict[str, Any]:
        """What the key hashes besides the config, as plain data for the JSON sidecar
        (which records the effective config beside it)."""
        return {"identity": self.identity, "init": self.init, "dataset": self.dataset,
                "network": self.network, "training_code_version": self.code_version}


def training_identity(
    registry: Any,
    adapt: Mapping[str, Any],
    *,
    network: Mapping[str, Any],
    where: str = "adapt",
    dataset: str | None = None,
    **overrides: Any,
) -> TrainingIdentity:
    """The effective training configuration's identity.

    ``adapt`` is the instance's ``adapt`` section, ``overrides`` the CLI's (``steps``,
    ``batch``, ``patch``, ``seed``; None = not given) and ``dataset`` a ``--dataset``
    override. ``network`` holds the model family's fields (architecture, implementation
    version). ``where`` names the instance in error messages.
    """
    config = resolve_config(dict(adapt), **overrides)
    if dataset:
        config["dataset"] = dataset
    init = _init_source(registry, config, network, where)
    data = _dataset_source(registry, str(config["dataset"]), where)
    hashed = {k: v for k, v in config.items() if k not in NOT_HASHED}
    identity = make_identity("esrgan-adapt", init=init["identity"], data=data["identity"],
                             network=dict(network), config=hashed,
                             code=TRAINING_CODE_VERSION)
    return TrainingIdentity(identity, config, init, data, dict(network))


def _init_source(registry: Any, config: dict[str, Any], network: Mapping[str, Any],
                 where: str) -> dict[str, Any]:
    name = config.get("init")
    if not name:
        seed = int(config["seed"])
        return {"random": f"seeded (seed {seed})",
                "identity": make_identity("random-init", seed=seed, network=dict(network))}
    try:
        component = registry.build("sr", str(name))
        # an adaptive init (baseline 3 starts from baseline 2): its configuration's key;
        # each quality's start is then keyed by its checkpoint (training.joint)
        identity = (getattr(component, "adapt_identity", None)
                    or getattr(component, "weights_identity", None))
        if identity is None:
            raise JcsrError(f"type {registry.resolve('sr', str(name)).type!r} has no "
                            "weights to start from (an esrgan instance is expected)")
    except JcsrError as exc:
        raise _in_context(exc, f"{where}.init {name!r}") from exc
    return {"name": str(name), "identity": str(identity)}


def _dataset_source(registry: Any, name: str, where: str) -> dict[str, Any]:
    try:
        identity = str(registry.build("datasets", name).identity)
    except JcsrError as exc:
        raise _in_context(exc, f"{where}.dataset {name!r} (trained models are keyed by "
                          "the training images' content, so it must be readable)") from exc
    return {"name": name, "identity": identity}


def _in_context(exc: JcsrError, where: str) -> JcsrError:
    """The same kind of error, prefixed with the adapt key it came from."""
    plain = (JcsrError, RegistryError, WeightsError, DataError, PluginError)
    kind = type(exc) if type(exc) in plain else JcsrError
    return kind(f"{where}: {exc}")
