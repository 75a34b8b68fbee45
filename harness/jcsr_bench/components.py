"""The component protocols. Duck-typed: a plugin need not subclass anything.

Every image crossing a stage boundary is 8-bit RGB: a ``torch.uint8`` tensor of shape
``[3, H, W]`` on the CPU -- what a real decoder hands to a viewer or an SR model.

Optional members the harness uses when present:
- ``Codec.reconstruct(image, quality) -> image``: fast reconstruction without entropy
  coding (learned codecs); training pairs use it instead of ``decode(encode())`` only
  when ``Codec.reconstruct_exact`` is True (bit-identical to the real decode);
- ``SRModel.for_codec(codec_identity, quality) -> SRModel``: adaptive models (baseline 2)
  resolve their per-(codec, quality) weights through it;
- ``Codec.decode_latent(payload) -> Latent`` and ``Codec.synthesize(latent) -> image``:
  a learned codec's decoded latent and its synthesis transform, with
  ``synthesize(decode_latent(p)) == decode(p)`` (the conformance kit checks it);
- ``SRModel.consumes_latent = True``: the model decodes from the codec's latent (joint
  decoding, baseline 3); the work unit calls its ``upscale_latent(latent, codec)``, and
  the planner refuses it after a codec without ``decode_latent``;
- ``Dataset.lr_image(name, scale) -> image | None``: a dataset's own LR file (DIV2K X4);
- ``to(device)`` on codecs and SR models: move to ``cpu`` / ``cuda``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch is only needed for the annotations
    import torch

    Image = torch.Tensor
else:
    Image = Any


class NotApplicable(Exception):
    """Raised by ``Metric.compute`` when the metric is undefined for the input.

    The reason is stored and reported with the "n/a" (a numbered note under the
    leaderboard's table) -- never a silent substitute.
    """


@runtime_checkable
class Codec(Protocol):
    identity: str
    qualities: Sequence[Any]

    def encode(self, image: Image, quality: Any) -> bytes: ...

    def decode(self, data: bytes) -> Image: ...


@runtime_checkable
class SRModel(Protocol):
    identity: str
    scale: int

    def upscale(self, image: Image) -> Image: ...


@runtime_checkable
class Dataset(Protocol):
    identity: str

    def __iter__(self) -> Iterator[tuple[str, Image]]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Metric(Protocol):
    name: str
    higher_is_better: bool

    def compute(self, reference: Image, test: Image) -> float: ...


@dataclass
class Latent:
    """A decoded latent: what a codec's synthesis transform turns into the decoded image.

    ``y`` is a float32 ``[1, C, h, w]`` CPU tensor (CompressAI's y-hat, entropy-decoded);
    the synthesis output is ``stride`` times larger, and the decoded image of ``size``
    ``(H, W)`` sits in it at ``offset`` ``(top, left)`` (the codec's padding).
    """

    y: Any
    quality: Any
    size: tuple[int, int]
    offset: tuple[int, int]
    stride: int


def offers_latent(codec: Any) -> bool:
    """Whether a codec implements the latent contract (``decode_latent`` + ``synthesize``)."""
    return callable(getattr(codec, "decode_latent", None)) and callable(
        getattr(codec, "synthesize", None))


def consumes_latent(model: Any) -> bool:
    """Whether an SR model declares it decodes from the codec's latent."""
    return getattr(model, "consumes_latent", False) is True


def missing_weights_of(component: Any, *args: Any) -> list[str]:
    """A component's own optional ``missing_weights(...)`` remedies as text (empty: it is
    ready, or it does not say)."""
    fn = getattr(component, "missing_weights", None)
    return [str(item) for item in (fn(*args) or [])] if callable(fn) else []
