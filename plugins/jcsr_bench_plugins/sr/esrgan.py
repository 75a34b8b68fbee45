"""ESRGAN: the ``esrgan`` SR component, on our own RRDBNet (``jcsr_bench.archs.rrdbnet``,
which reads every published key scheme).

The component (``ESRGAN``) resolves weights through ``jcsr_bench.artifacts.weights`` (verified,
safely unpickled), runs tiled inference (``jcsr_bench.imaging.tiling``) and, with an ``adapt``
section, resolves per-(codec, quality) fine-tuned weights from the trained-weights store
(baseline 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from jcsr_bench.archs.rrdbnet import (
    DEFAULT_ARCH,
    IMPL_VERSION,
    RRDBNet,
    load_rrdbnet,
)
from jcsr_bench.artifacts import trained_store as trained
from jcsr_bench.artifacts import weights
from jcsr_bench.artifacts.trained_store import TrainedWeightsMissing
from jcsr_bench.imaging import tiling
from jcsr_bench.kit.errors import JcsrError, WeightsError
from jcsr_bench.kit.identity import make_identity
from jcsr_bench.training.trained_from import training_identity

# --------------------------------------------------------------------------- component


def _source_label(source: Any) -> str:
    if isinstance(source, Mapping):
        return str(source.get("filename") or source.get("url"))
    return str(source)


def weights_remedies(source: Any) -> list[str]:
    """Remedies when a weight source is not available offline; empty when it is."""
    remedy = weights.missing_remedy(source)
    return [] if remedy is None else [remedy]


def _validate_weights(weights_source: Any) -> Any:
    """Check a weight source's shape at construction (cheap: no file access)."""
    if weights_source is None:
        return None

    weights.normalize_source(weights_source)
    return dict(weights_source) if isinstance(weights_source, Mapping) else weights_source


class ESRGAN(tiling.TiledSR):
    """The ``esrgan`` SR type: RRDBNet from weights (any scheme), from ``arch`` or adaptive."""

    def __init__(
        self,
        weights: str | Mapping[str, Any] | None = None,
        arch: Mapping[str, Any] | None = None,
        adapt: Mapping[str, Any] | None = None,
        tile: int = 0,
        tile_overlap: int = 16,
        precision: str = "fp32",
    ) -> None:
        super().__init__(tile, tile_overlap, precision)
        self.weights = _validate_weights(weights)
        self.arch = dict(arch) if arch is not None else None
        if self.arch is not None:
            unknown = sorted(set(self.arch) - set(DEFAULT_ARCH))
            if unknown:
                raise JcsrError(
                    f"esrgan arch: unknown keys {unknown}; allowed: {sorted(DEFAULT_ARCH)}"
                )
        self.adapt = dict(adapt) if adapt is not None else None
        if self.weights is None and self.arch is None and self.adapt is None:
            raise JcsrError(
                "esrgan needs 'weights' (a path or {url, sha256}), 'arch' (a randomly "
                "initialised RRDBNet) or 'adapt' (per-codec trained weights)"
            )
        if self.adapt is not None and self.weights is not None:
            raise JcsrError(
                "esrgan: give either 'weights' or 'adapt' (whose 'init' names the starting "
                "weights), not both"
            )
        self._registry: Any = None
        self._name = "esrgan"
        self._training: Any = None  # TrainingIdentity of the registry's configuration
        self._net: RRDBNet | None = None
        self._path: Path | None = None
        self._identity: str | None = None
        self._scale: int | None = None

    # -- weights ---------------------------------------------------------------------

    def _resolve(self) -> Path:
        if self._path is None:
            from jcsr_bench.artifacts import weights

            self._path = Path(weights.resolve(self.weights))
        return self._path

    @property
    def weights_identity(self) -> str:
        """What a network built from this instance starts from, without loading it: the
        weights' content hash, or the seeded random init and its architecture."""
        self._require_static("weights_identity")
        if self.weights is None:
            return make_identity("esrgan-init", impl=IMPL_VERSION, init="seed0",
                                 arch={**DEFAULT_ARCH, **(self.arch or {})})

        return weights.content_identity(self.weights)

    def missing_weights(self) -> list[str]:
        """Remedies for weights not available offline (empty: ready to run)."""
        if self.weights is None:
            return []
        return weights_remedies(self.weights)

    def model_label(self) -> str:
        """``esrgan (<weight file>)``, or the seeded random init."""
        return f"esrgan ({self._path if self._path is not None else 'random init'})"

    def _require_static(self, what: str) -> None:
        if self.adapt is not None:
            raise JcsrError(
                f"this esrgan instance is adaptive (one model per codec quality): {what} "
                "needs a codec -- use for_codec(codec_identity, quality)"
            )

    def _network(self) -> RRDBNet:
        if self._net is None:
            self._require_static("upscale")
            if self.weights is not None:
                net = load_rrdbnet(self._resolve())
                if self.arch is not None and {**net.arch, **self.arch} != net.arch:
                    raise WeightsError(
                        f"esrgan arch {self.arch} disagrees with the weights "
                        f"{_source_label(self.weights)} ({net.arch}); drop 'arch'"
                    )
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)  # deterministic from-scratch model
                    net = RRDBNet(**(self.arch or {}))
            # channels_last weights make the convs run in channels_last (~15% faster on
            # CPU oneDNN; tensor-core friendly on CUDA); outputs equal to float rounding.
            self._net = net.eval().to(self.device, memory_format=torch.channels_last)
            self._scale = net.scale
        return self._net

    # -- public attributes -------------------------------------------------------------

    @property
    def scale(self) -> int:
        """The upscaling factor (from ``arch`` or the weights; 4 for ESRGAN)."""
        if self._scale is None:
            if self.weights is None:
                self._scale = int((self.arch or {}).get("scale", 4))
            else:
                self._network()
        assert self._scale is not None
        return self._scale

    @property
    def identity(self) -> str:
        """Weights content hash + architecture + inference settings.

        An adaptive instance answers its ``adapt_identity``: the models it resolves via
        ``for_codec`` carry their own checkpoint's content hash.
        """
        if self.adapt is not None:
            return str(self.adapt_identity)
        if self._identity is None:
            fields: dict[str, Any] = {"impl": IMPL_VERSION, **self._inference_fields()}
            if self.weights is not None:
                from jcsr_bench.artifacts import weights

                fields["weights"] = weights.file_identity(self._resolve())
            else:
                fields.update(arch={**DEFAULT_ARCH, **(self.arch or {})}, init="seed0")
            self._identity = make_identity("esrgan", **fields)
        return self._identity

    def to(self, device: torch.device | str) -> ESRGAN:
        """Move inference to ``device`` (``cpu``, ``cuda``, ``cuda:1`` ...)."""
        self.device = torch.device(device)
        if self._net is not None:
            self._net.to(self.device, memory_format=torch.channels_last)
        return self

    # -- adaptive (baseline 2) -----------------------------------------------------------

    def bind_registry(self, registry: Any, name: str) -> None:
        """Resolve ``adapt.init`` and ``adapt.dataset`` in ``registry`` (``Registry.build``
        calls this); ``name`` is this instance's name, for messages."""
        self._registry, self._name, self._training = registry, name, None

    def training_identity(self, *, dataset: str | None = None, **overrides: Any) -> Any:
        """What this instance's models are trained from (``TrainingIdentity``), with
        ``train-sr``'s overrides (``steps``, ``batch``, ``patch``, ``seed``, ``dataset``).

        The init weights and the dataset are identified by content, so changing either
        (or any hyper-parameter) gives another trained-weights store key.
        """
        if self.adapt is None:
            raise JcsrError(f"sr.{self._name} has no 'adapt' section: nothing is trained")
        if self._registry is None:
            raise JcsrError(
                "an adaptive esrgan instance names its init model and dataset: build it "
                "through a registry (load_registry().build('sr', NAME)) so that they resolve"
            )
        arch = self.arch if self.adapt.get("init") else {**DEFAULT_ARCH, **(self.arch or {})}
        return training_identity(self._registry, self.adapt, dataset=dataset,
                                 network={"type": "esrgan", "impl": IMPL_VERSION, "arch": arch},
                                 where=f"sr.{self._name}.adapt", **overrides)

    @property
    def adapt_identity(self) -> str | None:
        """The registry configuration's training identity (None for static instances):
        the trained-weights store folder that ``for_codec`` reads."""
        if self.adapt is None:
            return None
        if self._training is None:
            self._training = self.training_identity()
        return self._training.identity

    @property
    def consumes_latent(self) -> bool:
        """True for joint decoding (``adapt.joint``, baseline 3): it decodes the latent."""
        return bool(self.adapt and self.adapt.get("joint"))

    @property
    def training_dataset(self) -> str | None:
        """The dataset instance the adapted models are trained on (None when static): a
        run warns when it evaluates them on the same images."""
        if self.adapt is None or self.adapt_identity is None or self._training is None:
            return None
        return str(self._training.config["dataset"])

    def checkpoint_path(self, codec_identity: str, quality: Any) -> Path:
        """Where ``train-sr`` stores this instance's weights for (codec, quality)."""
        if self.adapt is None:
            raise JcsrError("checkpoint_path is only defined for adaptive esrgan instances")
        if self.consumes_latent:
            from jcsr_bench.training.joint import joint_checkpoint_path

            return joint_checkpoint_path(self._registry, self, codec_identity, quality)
        return trained.checkpoint_path(str(self.adapt_identity), codec_identity, quality)

    def for_codec(self, codec_identity: str, quality: Any) -> Any:
        """The SR model to use after ``codec_identity`` at ``quality``.

        Static instances return themselves; adaptive ones load the trained checkpoint
        or raise ``TrainedWeightsMissing``.
        """
        if self.adapt is None:
            return self
        path = self.checkpoint_path(codec_identity, quality)
        if not path.is_file():
            raise TrainedWeightsMissing(path, quality, codec_identity)
        if self.consumes_latent:
            from jcsr_bench.training.joint import JointModel

            return JointModel(path).to(self.device)
        model = ESRGAN(
            weights=str(path),
            tile=self.tile,
            tile_overlap=self.tile_overlap,
            precision=self.precision,
        )
        return model.to(self.device)
