"""CompressAI learned image codecs with real entropy-coded bitstreams.

``encode`` runs the model's ``compress`` (the real rANS entropy coder) and packs the
streams behind a compact header; ``decode`` runs ``decompress`` on them. bpp is counted
from the whole payload, header included -- never estimated from likelihoods.

Padding: like CompressAI's evaluator, the image is padded to a multiple of 64 with
zeros, centred (``compressai.ops.compute_padding`` + ``F.pad(mode="constant")``), and
the reconstruction is cropped back; so on images whose sides are multiples of 64 the
decoded image is exactly the evaluator's.

Payload layout (big-endian), version 1::

    offset  size  field
    0       1     format version (1)
    1       1     quality (uint8) -- selects the model at decode time
    2       2+2   original image height, width (uint16)
    6       2+2   latent shape h, w passed to ``decompress`` (uint16)
    10      1     number of streams n (2 for hyperprior models: y then z)
    11      ...   n stream lengths, unsigned LEB128 varints (1-3 bytes each)
    ...     4     CRC-32 of every other byte of the payload (header and streams)
    ...           the n entropy-coded streams, concatenated

The header is ``15 + sum(varint sizes)`` bytes: 18 bytes for bmshj2018-hyperprior on
typical images (y stream 128 B..16 KiB, z stream < 128 B). The CRC turns a truncated or
corrupted payload into a clear error instead of feeding garbage to the C++ decoder.

Devices: on an H100 the payloads were byte-identical to the CPU's, but the synthesis
transform's float arithmetic differs, so a payload decoded on another device can differ
by one 8-bit level on some pixels. Decoding is deterministic on one device; the harness
decodes once and scores exactly that image (the device is in the report header).
"""

from __future__ import annotations

import importlib.metadata
import struct
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F

from jcsr_bench.artifacts import weights as wlayer
from jcsr_bench.components import Latent
from jcsr_bench.kit.errors import DataError, JcsrError, RegistryError, WeightsError
from jcsr_bench.kit.identity import make_identity
from jcsr_bench.kit.suggest import did_you_mean

# CompressAI's entropy models call torch.jit.script, which recent torch deprecates with a
# FutureWarning at import; it is CompressAI's to fix and says nothing to our users.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                        category=FutureWarning)

FORMAT_VERSION = 1
MIN_DIV = 64  # 6 stride-2 stages (g_a then h_a) in the hyperprior models
PADDING = "zeros, centred, to a multiple of 64 (as compressai.utils.eval_model)"
METRICS = ("mse", "ms-ssim")
# Architectures whose quantised forward pass (``reconstruct``) equals ``decode(encode())``
# bit for bit on one device: their latents are rounded around the very means (or
# medians) the entropy coder codes against. The autoregressive mbt2018 / cheng2020-*
# round without the context model's means, so their reconstruct is only close.
EXACT_RECONSTRUCT = frozenset({"bmshj2018-factorized", "bmshj2018-hyperprior",
                               "mbt2018-mean"})
_FIXED = struct.Struct(">BBHHHHB")
_CRC = struct.Struct(">I")


# -- payload format --------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """The decoded fields of a payload."""

    quality: int
    height: int
    width: int
    latent_shape: tuple[int, int]
    streams: list[bytes]
    header_size: int


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pack_payload(
    quality: int, height: int, width: int, latent_shape: Sequence[int], streams: Sequence[bytes]
) -> bytes:
    """Header + streams; see the module docstring for the layout."""
    fixed = _FIXED.pack(
        FORMAT_VERSION, quality, height, width, latent_shape[0], latent_shape[1], len(streams)
    )
    head = fixed + b"".join(_varint(len(s)) for s in streams)
    body = b"".join(streams)
    return head + _CRC.pack(zlib.crc32(body, zlib.crc32(head))) + body


def unpack_payload(data: bytes) -> Payload:
    """Parse and verify a payload; any inconsistency is a ``DataError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"a compressai payload is bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _FIXED.size + _CRC.size:
        raise DataError(f"compressai payload truncated: {len(data)} bytes is shorter than a header")
    version, quality, height, width, lh, lw, n = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
        raise DataError(
            f"not a jcsr-bench compressai payload (format byte {version}, expected "
            f"{FORMAT_VERSION}); was it made by another codec?"
        )
    pos, lengths = _FIXED.size, []
    for _ in range(n):
        value = shift = 0
        while True:
            if pos >= len(data) or shift > 28:
                raise DataError("compressai payload truncated or corrupt in its stream lengths")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        lengths.append(value)
    head_end = pos + _CRC.size
    expected = head_end + sum(lengths)
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"compressai payload {kind}: header announces {expected} bytes, got {len(data)}"
        )
    (crc,) = _CRC.unpack_from(data, pos)
    if zlib.crc32(data[head_end:], zlib.crc32(data[:pos])) != crc:
        raise DataError("compressai payload corrupt: CRC-32 mismatch")
    streams, offset = [], head_end
    for length in lengths:
        streams.append(data[offset : offset + length])
        offset += length
    return Payload(quality, height, width, (lh, lw), streams, head_end)


def header_size(data: bytes) -> int:
    """Bytes of a payload that are header, not entropy-coded stream."""
    return unpack_payload(data).header_size


# -- helpers ---------------------------------------------------------------------------


def _zoo() -> Any:
    from compressai.zoo import image

    return image


def published_url(arch: str, metric: str, quality: int) -> str | None:
    """CompressAI's published weight URL for (arch, metric, quality), or None."""
    return _zoo().model_urls.get(arch, {}).get(metric, {}).get(quality)


def _check_image(image: Any) -> torch.Tensor:
    from jcsr_bench.imaging.images import check_image

    check_image(image, "codec input")
    h, w = image.shape[1:]
    if h < 1 or w < 1 or h > 0xFFFF or w > 0xFFFF:
        raise DataError(f"image size {w}x{h} is outside 1..65535 pixels per side")
    return image


def _pad(h: int, w: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    from compressai.ops import compute_padding

    return compute_padding(h, w, min_div=MIN_DIV)


def _to_uint8(x: torch.Tensor, model: str) -> torch.Tensor:
    """[1, 3, H, W] float in [0, 1] -> [3, H, W] uint8 on CPU, rounded like the evaluator.

    NaN would become black pixels scored as a real result: refused, naming ``model``."""
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{model}: the decoded image holds NaN or infinite values (broken "
                        "weights?); no result is scored from it")
    return x[0].mul(255).clamp(0, 255).round().to(torch.uint8).cpu()


MAX_LATENT = 2.0**24  # |symbol| the range coder takes; beyond, int32 overflow loops forever


def _guard_entropy_coders(net: Any, model: str) -> None:
    """Check every latent before it reaches CompressAI's range coder.

    NaN, infinite or huge latents (from broken weights) overflow the coder's int32
    symbols and make ``encode_with_indexes`` loop forever, so each entropy model's
    ``compress`` of this network checks its inputs first and raises instead.
    """
    from compressai.entropy_models import EntropyModel

    for module in net.modules():
        if isinstance(module, EntropyModel) and "compress" not in vars(module):
            module.compress = _checked_compress(module.compress, model)


def _checked_compress(compress: Any, model: str) -> Any:
    def checked(inputs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        for name, value in (("latent", inputs), ("means", kwargs.get("means"))):
            if isinstance(value, torch.Tensor) and value.numel() and not (
                    bool(torch.isfinite(value).all()) and float(value.abs().max()) < MAX_LATENT):
                raise DataError(
                    f"{model}: the encoder's {name} holds NaN, infinite or huge values "
                    "(broken weights?); refusing to entropy-code it (the coder would hang)")
        return compress(inputs, *args, **kwargs)

    return checked


def _as_quality(q: Any) -> int:
    if isinstance(q, str) and q.strip().isdigit():
        q = int(q)
    if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= 255:
        raise RegistryError(f"compressai qualities are integers 0..255, got {q!r}")
    return q


def _is_single_source(value: Any) -> bool:
    return not isinstance(value, Mapping) or "url" in value


# -- the codec -------------------------------------------------------------------------


class CompressAICodec:
    """A CompressAI image architecture at its qualities, one model per quality.

    Weights per quality come from ``weights`` (one source for a single-quality
    instance, or a mapping quality -> source), else from CompressAI's published
    weights (resolved, verified and cached by ``jcsr_bench.artifacts.weights``), else -- with
    ``pretrained=False`` -- a deterministic random initialisation (tests, training).
    Models are loaded lazily, the first time a quality is used.
    """

    def __init__(
        self,
        arch: str = "bmshj2018-hyperprior",
        metric: str = "mse",
        qualities: Iterable[Any] | None = None,
        weights: Any = None,
        pretrained: bool = True,
    ) -> None:
        zoo = _zoo()
        if arch not in zoo.model_architectures:
            raise RegistryError(
                f"unknown compressai architecture {arch!r}."
                + did_you_mean(arch, zoo.model_architectures)
            )
        if metric not in METRICS:
            raise RegistryError(
                f"unknown compressai metric {metric!r}; choose one of {list(METRICS)}"
            )
        self.arch, self.metric, self.pretrained = arch, metric, bool(pretrained)
        ladder = None if qualities is None else [_as_quality(q) for q in qualities]
        self._sources: dict[int, Any] = {}
        self._published: set[int] = set()
        if weights is not None:
            if _is_single_source(weights):
                ladder = ladder or [1]
                if len(ladder) != 1:
                    raise RegistryError(
                        f"one weights file was given for {len(ladder)} qualities {ladder}; "
                        "give a mapping quality -> weights, or a single quality"
                    )
                self._sources[ladder[0]] = weights
            else:
                mapping = {_as_quality(q): src for q, src in weights.items()}
                ladder = ladder or sorted(mapping)
                missing = [q for q in ladder if q not in mapping]
                if missing:
                    raise RegistryError(
                        f"no weights for quality {missing} in the `weights` mapping "
                        f"(it has {sorted(mapping)})"
                    )
                self._sources.update({q: mapping[q] for q in ladder})
            for src in self._sources.values():
                wlayer.normalize_source(src)  # validate the source's shape early
        elif self.pretrained:
            available = sorted(zoo.model_urls.get(arch, {}).get(metric, {}))
            ladder = available if ladder is None else ladder
            bad = [q for q in ladder if q not in available]
            if bad or not ladder:
                raise RegistryError(
                    f"no published CompressAI weights for {arch} ({metric}) at quality "
                    f"{bad or ladder}; published qualities: {available or 'none'}"
                )
            for q in ladder:
                self._sources[q] = {"url": published_url(arch, metric, q)}
                self._published.add(q)
        else:
            available = sorted(zoo.cfgs[arch])
            ladder = available if ladder is None else ladder
            bad = [q for q in ladder if q not in available]
            if bad:
                raise RegistryError(
                    f"{arch} has no configuration for quality {bad}; valid: {available}"
                )
            self._sources = dict.fromkeys(ladder)
        if not ladder:
            raise RegistryError("a compressai codec needs at least one quality")
        self.qualities: list[int] = list(ladder)
        self.device = torch.device("cpu")
        self._models: dict[int, Any] = {}

    # identity ---------------------------------------------------------------------

    def _weight_id(self, q: int) -> str:
        src = self._sources[q]
        if src is None:
            return f"random-init(seed={q},torch={torch.__version__})"
        norm = wlayer.normalize_source(src)
        if "path" in norm:
            return "sha256:" + wlayer.file_identity(norm["path"])
        return "sha256:" + norm["sha256"]

    @cached_property
    def identity(self) -> str:
        """Type, architecture, metric, weights hash per quality, coder and format."""
        import compressai

        fields = {
            "type": "compressai",
            "arch": self.arch,
            "metric": self.metric,
            "weights": {str(q): self._weight_id(q) for q in self.qualities},
            "update": {str(q): q not in self._published for q in self.qualities},
            "format": FORMAT_VERSION,
            "padding": PADDING,
            "entropy_coder": compressai.get_entropy_coder(),
            "compressai": importlib.metadata.version("compressai"),
        }
        return make_identity(f"compressai:{self.arch}:{self.metric}", **fields)

    def __repr__(self) -> str:
        return f"CompressAICodec({self.arch!r}, {self.metric!r}, qualities={self.qualities})"

    # weights ----------------------------------------------------------------------

    def missing_weights(self, qualities: Iterable[Any] | None = None) -> list[str]:
        """What the user must do for weights that are not available without network."""
        remedies = []
        for q in self.qualities if qualities is None else qualities:
            src = self._sources.get(q)
            if src is None or q in self._models:
                continue
            remedy = wlayer.missing_remedy(src)
            if remedy:
                remedies.append(f"{self.arch} ({self.metric}) quality {q}: {remedy}")
        return remedies

    def _check_quality(self, quality: Any) -> int:
        if quality not in self.qualities:
            raise JcsrError(
                f"quality {quality!r} is not in the ladder of {self.arch} ({self.metric}); "
                f"valid qualities: {self.qualities}"
            )
        return quality

    def model(self, quality: int) -> Any:
        """The model for a quality, loaded on first use (eval mode, on ``self.device``)."""
        q = self._check_quality(quality)
        net = self._models.get(q)
        if net is None:
            net = self._load(q).eval().to(self.device)
            _guard_entropy_coders(net, self._model_label(q))
            self._models[q] = net
        return net

    def _model_label(self, q: int) -> str:
        """The model and its weight file, for errors about what it computed."""
        src = self._sources[q]
        if src is None:
            return f"{self.arch} quality {q} (random init)"
        where = (src.get("path") or src.get("url")) if isinstance(src, Mapping) else src
        return f"{self.arch} quality {q} ({where})"

    def _load(self, q: int) -> Any:
        zoo = _zoo()
        cls = zoo.model_architectures[self.arch]
        src = self._sources[q]
        if src is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(q)
                net = cls(*zoo.cfgs[self.arch][q])
            net.update(force=True)
            return net
        path = wlayer.resolve(src)
        state = wlayer.unwrap_state_dict(
            wlayer.load_checkpoint(path), keys=("state_dict", "network", "model_state_dict")
        )
        from compressai.zoo.pretrained import load_pretrained

        try:
            net = cls.from_state_dict(load_pretrained(state))
        except (KeyError, RuntimeError, ValueError, IndexError) as exc:
            raise WeightsError(
                f"checkpoint {path} does not fit architecture {self.arch}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc
        if q not in self._published or not _has_cdf_tables(net):
            net.update(force=True)  # as the evaluator does for checkpoints
        return net

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its loaded networks (some architectures, cheng2020-attn's
        local classes, do not pickle); a copy reloads them, identically, on first use."""
        state = dict(self.__dict__)
        state["_models"] = {}
        return state

    def to(self, device: Any) -> CompressAICodec:
        """Move loaded (and future) models to ``device``."""
        self.device = torch.device(device)
        for q, net in self._models.items():
            self._models[q] = net.to(self.device)
        return self

    # coding -----------------------------------------------------------------------

    def _input(self, image: Any) -> tuple[torch.Tensor, int, int]:
        image = _check_image(image)
        h, w = image.shape[1:]
        x = image.to(self.device).to(torch.float32).div(255).unsqueeze(0)
        pad, _ = _pad(h, w)
        return F.pad(x, pad, mode="constant", value=0), h, w

    @torch.no_grad()
    def encode(self, image: torch.Tensor, quality: int) -> bytes:
        """Entropy-coded payload (header + streams) of an 8-bit RGB image."""
        net = self.model(quality)
        x, h, w = self._input(image)
        out = net.compress(x)
        streams = []
        for group in out["strings"]:
            if len(group) != 1 or not isinstance(group[0], bytes):
                raise JcsrError(f"{self.arch}: unexpected compress() output (batch of 1 expected)")
            streams.append(group[0])
        shape = tuple(int(s) for s in out["shape"])
        if len(shape) != 2 or max(shape) > 0xFFFF:
            raise JcsrError(f"{self.arch}: unsupported latent shape {shape} in compress() output")
        return pack_payload(quality, h, w, shape, streams)

    @torch.no_grad()
    def decode(self, data: bytes) -> torch.Tensor:
        """The 8-bit RGB image a payload encodes (deterministic)."""
        p = unpack_payload(data)
        if p.quality not in self.qualities:
            raise DataError(
                f"payload was made at quality {p.quality}, which this {self.arch} codec does "
                f"not have (valid: {self.qualities})"
            )
        net = self.model(p.quality)
        try:
            out = net.decompress([[s] for s in p.streams], torch.Size(p.latent_shape))
        except Exception as exc:  # the payload passed its CRC: report, never crash the run
            raise DataError(f"{self.arch}: cannot decode payload: {exc}") from exc
        _, unpad = _pad(p.height, p.width)
        x_hat = F.pad(out["x_hat"], unpad)
        if tuple(x_hat.shape) != (1, 3, p.height, p.width):
            raise DataError(
                f"payload inconsistent: latent {p.latent_shape} does not decode to "
                f"{p.width}x{p.height}"
            )
        return _to_uint8(x_hat, self._model_label(p.quality))

    # latents (joint decoding, baseline 3) ---------------------------------------------

    @torch.no_grad()
    def decode_latent(self, data: bytes) -> Latent:
        """The entropy-decoded latent y-hat of a payload, before the synthesis transform.

        Runs the model's own ``decompress`` with ``g_s`` swapped for a recorder, so every
        architecture's decoding (autoregressive context models included) yields exactly
        the tensor its ``g_s`` would receive.
        """
        p = unpack_payload(data)
        if p.quality not in self.qualities:
            raise DataError(
                f"payload was made at quality {p.quality}, which this {self.arch} codec does "
                f"not have (valid: {self.qualities})"
            )
        net = self.model(p.quality)
        recorder = _Recorder()
        synthesis, net.g_s = net.g_s, recorder
        try:
            net.decompress([[s] for s in p.streams], torch.Size(p.latent_shape))
        except Exception as exc:
            raise DataError(f"{self.arch}: cannot decode payload: {exc}") from exc
        finally:
            net.g_s = synthesis
        pad, _ = _pad(p.height, p.width)
        y = recorder.seen.float().cpu()
        stride = (p.height + pad[2] + pad[3]) // int(y.shape[-2])
        return Latent(y, p.quality, (p.height, p.width), (pad[2], pad[0]), stride)

    def synthesis_module(self, quality: int) -> torch.nn.Module:
        """A trainable copy of the synthesis transform ``g_s`` at ``quality`` (on the CPU)."""
        import copy

        return copy.deepcopy(self.model(quality).g_s).cpu().float()

    @torch.no_grad()
    def synthesize(self, latent: Latent) -> torch.Tensor:
        """The 8-bit RGB image of a latent: ``decode(p) == synthesize(decode_latent(p))``."""
        net = self.model(self._check_quality(latent.quality))
        x_hat = net.g_s(latent.y.to(self.device)).clamp_(0, 1)
        (top, left), (h, w) = latent.offset, latent.size
        return _to_uint8(x_hat[..., top : top + h, left : left + w])

    @property
    def reconstruct_exact(self) -> bool:
        """True when ``reconstruct`` equals ``decode(encode())`` (training pairs use it)."""
        return self.arch in EXACT_RECONSTRUCT

    @torch.no_grad()
    def reconstruct(self, image: torch.Tensor, quality: int) -> torch.Tensor:
        """Quantised forward pass, no entropy coding (fast).

        Equals ``decode(encode(...))`` for the factorized / hyperprior / mean-scale
        models (:data:`EXACT_RECONSTRUCT`); only close to it (latents rounded without
        the context model's means) for the autoregressive mbt2018 / cheng2020.
        """
        net = self.model(quality)
        x, h, w = self._input(image)
        _, unpad = _pad(h, w)
        x_hat = F.pad(net(x)["x_hat"], unpad)
        return _to_uint8(x_hat, self._model_label(quality))


class _Recorder(torch.nn.Module):
    """Stands in for ``g_s`` during ``decompress``: keeps its input, returns a dummy."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        self.seen = y.detach().clone()
        return torch.zeros(1, device=y.device)


def _has_cdf_tables(net: Any) -> bool:
    for name, buf in net.named_buffers():
        if name.endswith("_quantized_cdf") and buf.numel() == 0:
            return False
    return True
