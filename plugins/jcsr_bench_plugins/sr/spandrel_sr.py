"""The ``spandrel`` SR type: bring your own model (Real-ESRGAN, SwinIR, HAT, ...).

spandrel detects the architecture and hyper-parameters of many published SR checkpoints.
The file is resolved and unpickled by ``jcsr_bench.artifacts.weights`` (verified, data only), and
spandrel builds the network from the state_dict; spandrel's own file loader is not used
(it would run TorchScript ``.pt`` files, i.e. code). spandrel is an optional dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from jcsr_bench.imaging import tiling
from jcsr_bench.kit.errors import JcsrError, WeightsError
from jcsr_bench.kit.identity import make_identity
from jcsr_bench_plugins.sr.esrgan import weights_remedies

INSTALL_HINT = "pip install 'jcsr-bench[spandrel]'"


def import_spandrel() -> Any:
    """The spandrel module, or a JcsrError saying how to install it."""
    try:
        import spandrel
    except ImportError as err:
        raise JcsrError(
            f"the spandrel SR type needs the optional package spandrel: {INSTALL_HINT} "
            f"({err})"
        ) from None
    return spandrel


class SpandrelSR(tiling.TiledSR):
    """Any image-to-image SR checkpoint spandrel recognises, run with our tiling."""

    def __init__(
        self,
        weights: str | Mapping[str, Any],
        tile: int = 0,
        tile_overlap: int = 16,
        precision: str = "fp32",
    ) -> None:
        super().__init__(tile, tile_overlap, precision)
        import_spandrel()  # fails here, with the remedy, when it is not installed
        if not isinstance(weights, (str, Path, Mapping)):
            raise JcsrError(f"spandrel: weights must be a path or {{url, sha256}}, got {weights!r}")
        self.weights = dict(weights) if isinstance(weights, Mapping) else weights
        self._path: Path | None = None
        self._descriptor: Any = None
        self._identity: str | None = None

    def _resolve(self) -> Path:
        if self._path is None:
            from jcsr_bench.artifacts import weights

            self._path = Path(weights.resolve(self.weights))
        return self._path

    def model_label(self) -> str:
        """``spandrel (<weight file>)`` for errors about its output."""
        return f"spandrel ({self._path if self._path is not None else self.weights})"

    def missing_weights(self) -> list[str]:
        """Remedies for weights not available offline (empty: ready to run)."""
        return weights_remedies(self.weights)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded network (spandrel's descriptors hold lambdas); a
        copy loads it again from the same verified file on first use."""
        state = dict(self.__dict__)
        state["_descriptor"] = None
        return state

    def _network(self) -> Any:
        if self._descriptor is None:
            from jcsr_bench.artifacts import weights

            path = self._resolve()
            spandrel = import_spandrel()  # not kept: a module does not pickle (Ray)
            state = spandrel.canonicalize_state_dict(dict(weights.load_checkpoint(path)))
            try:
                descriptor = spandrel.ModelLoader().load_from_state_dict(state)
            except spandrel.UnsupportedModelError:
                raise WeightsError(
                    f"{path}: spandrel {spandrel.__version__} does not recognise this "
                    "checkpoint's architecture"
                ) from None
            if not isinstance(descriptor, spandrel.ImageModelDescriptor):
                raise WeightsError(
                    f"{path}: a {descriptor.architecture.name} model is not an "
                    "image-to-image SR model"
                )
            if descriptor.input_channels != 3 or descriptor.output_channels != 3:
                raise WeightsError(
                    f"{path}: {descriptor.architecture.name} takes {descriptor.input_channels} "
                    f"and returns {descriptor.output_channels} channels; RGB (3) is needed"
                )
            self._descriptor = descriptor.eval().to(self.device)
        return self._descriptor

    @property
    def scale(self) -> int:
        """The checkpoint's upscaling factor (loads the model on first use)."""
        return int(self._network().scale)

    @property
    def architecture(self) -> str:
        """spandrel's name for the detected architecture (e.g. ``"ESRGAN"``)."""
        return str(self._network().architecture.name)

    @property
    def identity(self) -> str:
        """Weights content hash + spandrel version (it builds the network) + settings."""
        if self._identity is None:
            from jcsr_bench.artifacts import weights

            self._identity = make_identity(
                "spandrel",
                weights=weights.file_identity(self._resolve()),
                spandrel=import_spandrel().__version__,
                **self._inference_fields(),
            )
        return self._identity

    def to(self, device: torch.device | str) -> SpandrelSR:
        """Move inference to ``device``."""
        self.device = torch.device(device)
        if self._descriptor is not None:
            self._descriptor.to(self.device)
        return self
