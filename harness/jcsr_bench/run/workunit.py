"""The work unit: one (image, codec, quality) through the pipeline, the only code that does.

Given the HR image and its LR image (made once per image, :func:`hr_and_lr`), a unit
encodes and decodes once (or takes the cached codec output it is handed), then every SR
model of the group upscales and every metric scores. It returns its cell records and,
when it ran the codec, the codec output for the driver's cache: it writes nothing
itself, so it runs the same in-process or on a remote worker (``jcsr_bench.run.execute``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jcsr_bench.components import NotApplicable, consumes_latent
from jcsr_bench.imaging.quality import compute_metric
from jcsr_bench.kit.devices import timed
from jcsr_bench.kit.errors import JcsrError, PluginError, one_line
from jcsr_bench.kit.version import __version__
from jcsr_bench.results.store import CellRecord
from jcsr_bench.run.cache import CodecOutput

__all__ = ["UnitCell", "UnitContext", "UnitResult", "WorkUnit", "codec_stage", "evaluate",
           "failed", "hr_and_lr", "sr_stage"]


def stage_image(image: Any, what: str, shape: Sequence[int] | None = None) -> Any:
    """The shared stage-boundary check, then onto the CPU (a plugin may hand back CUDA)."""
    from jcsr_bench.imaging.images import check_image

    image = check_image(image, what, shape)
    return image.cpu() if image.device.type != "cpu" else image


@dataclass
class UnitCell:
    """One SR model of a unit: the model to call and the keys to store."""

    sr: str
    model_key: tuple[str, str, str]  # (sr, codec, quality text) in UnitContext.models
    sr_key: str
    cell_key: str


@dataclass
class WorkUnit:
    """One (image, codec, quality) and the SR cells still to compute for it."""

    dataset: str
    image: str
    image_index: int
    image_hash: str
    codec: str
    quality: Any
    quality_index: int
    codec_key: str
    cells: list[UnitCell]

    def record(self, cell: UnitCell, *, error: str | None = None, **fields: Any) -> CellRecord:
        return CellRecord(self.dataset, self.image, self.codec, self.quality, cell.sr,
                          self.image_index, self.quality_index, cell.cell_key, self.codec_key,
                          cell.sr_key, self.image_hash, "error" if error else "ok", error,
                          **fields)


@dataclass
class UnitResult:
    """A unit's cell records; ``codec_output`` is set when the codec ran (to cache it)."""

    unit: WorkUnit
    records: list[CellRecord]
    codec_output: Any = None
    cache_hit: bool = False


@dataclass
class UnitContext:
    """What every unit of a run needs: settings, codecs, SR models and metrics.

    Built once on the driver; a remote worker receives it once and keeps it.
    """

    scale: int
    kernel: str
    device: str
    codecs: dict[str, Any]
    models: dict[tuple[str, str, str], Any]
    metrics: list[tuple[str, Any, str]]  # (name, metric, identity)
    _moved: dict[int, Any] = field(default_factory=dict, repr=False)

    def on_device(self, obj: Any) -> Any:
        """``obj.to(device)`` once, on first use (cached codec outputs never move models)."""
        moved = self._moved.get(id(obj))
        if moved is None:
            to = getattr(obj, "to", None)
            moved = obj
            if callable(to):
                result = to(self.device)
                moved = obj if result is None else result
            self._moved[id(obj)] = moved
        return moved

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_moved"] = {}  # ids mean nothing in another process
        return state


def hr_and_lr(hr: Any, name: str, scale: int, kernel: str, dataset: Any = None
            ) -> tuple[Any, Any]:
    """``(mod-cropped HR, LR)`` of one image: the dataset's LR file or the kernel's."""
    from jcsr_bench.imaging.lr import lr_for, mod_crop

    hr = stage_image(hr, f"image {name}")
    hr_c = mod_crop(hr, scale)
    lr = hr_c if scale == 1 else stage_image(
        lr_for(hr, scale, kernel, dataset=dataset, name=name), f"LR image of {name}")
    return hr_c, lr


def failed(unit: WorkUnit, error: str) -> UnitResult:
    """Every cell of ``unit`` failed with ``error`` (image unreadable, LR failed...)."""
    return UnitResult(unit, [unit.record(cell, error=error) for cell in unit.cells])


def evaluate(unit: WorkUnit, context: UnitContext, hr: Any, lr: Any,
             cached: Any = None) -> UnitResult:
    """Run one unit: the codec once (or ``cached``, a ``CodecOutput``), then each SR cell."""
    try:
        output, fresh = codec_stage(unit, context, lr, cached)
    except Exception as exc:
        return failed(unit, f"codec {unit.codec}: {one_line(exc)}")
    records = [_score(unit, cell, context, hr, lr, output) for cell in unit.cells]
    return UnitResult(unit, records, fresh, cache_hit=fresh is None)


def needs_latent(unit: WorkUnit, context: UnitContext) -> bool:
    """Whether a model of the unit decodes from the codec's latent (baseline 3)."""
    return any(consumes_latent(context.models.get(c.model_key)) for c in unit.cells)


def codec_stage(unit: WorkUnit, context: UnitContext, lr: Any, cached: Any = None
                ) -> tuple[Any, Any]:
    """``(codec output, the same when newly computed else None)``: ``cached`` when it
    fits the LR image, else one encode + decode. When a model of the unit consumes the
    latent, the output carries it (a cached output without one gains it from its
    payload: entropy decoding only, and the entry is stored again)."""
    latent = needs_latent(unit, context)
    if cached is not None and list(cached.decoded.shape) == list(lr.shape):
        if not latent or cached.latent is not None:
            return cached, None
        codec = context.on_device(context.codecs[unit.codec])
        output = replace(cached, latent=codec.decode_latent(cached.payload))
        return output, output
    codec = context.on_device(context.codecs[unit.codec])
    payload, encode_s = timed(codec.encode, lr, unit.quality, device=context.device)
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise PluginError(f"encode returned {type(payload).__name__}, not bytes")
    payload = bytes(payload)
    decoded, decode_s = timed(codec.decode, payload, device=context.device)
    decoded = stage_image(decoded, "the decoded image", lr.shape)
    output = CodecOutput(payload, decoded, encode_s, decode_s,
                         codec.decode_latent(payload) if latent else None)
    return output, output


def sr_stage(cell: UnitCell, context: UnitContext, hr: Any, lr: Any, decoded: Any,
             latent: Any = None, codec: str | None = None) -> tuple[Any, Any, float]:
    """``(SR output, its reference image, seconds)``: scale-1 models against the LR.
    A latent-consuming model gets ``latent`` and the codec (named ``codec``) instead of
    the decoded image."""
    model = context.on_device(context.models[cell.model_key])
    scale = int(model.scale)
    if scale not in (1, context.scale):
        raise JcsrError(f"SR scale {scale} does not match the run's scale {context.scale}")
    if consumes_latent(model):
        if latent is None or codec is None:
            raise JcsrError(f"SR {cell.sr} decodes from the codec's latent, which this "
                            "codec output does not carry")
        result, sr_s = timed(model.upscale_latent, latent,
                             context.on_device(context.codecs[codec]), device=context.device)
    else:
        result, sr_s = timed(model.upscale, decoded, device=context.device)
    reference = lr if scale == 1 else hr
    result = stage_image(result, f"the output of SR {cell.sr}", reference.shape)
    return result, reference, sr_s


def codec_cache_info(unit: WorkUnit, codec: Any) -> dict[str, Any]:
    """What the codec cache records beside an output of ``unit``."""
    return {"codec": unit.codec, "codec_identity": codec.identity, "quality": unit.quality,
            "harness": __version__}


def _score(unit: WorkUnit, cell: UnitCell, context: UnitContext, hr: Any, lr: Any,
           output: Any) -> CellRecord:
    try:
        result, reference, sr_s = sr_stage(cell, context, hr, lr, output.decoded,
                                           output.latent, unit.codec)
    except Exception as exc:
        return unit.record(cell, error=f"SR {cell.sr}: {one_line(exc)}")
    bits = 8 * len(output.payload)
    values: dict[str, float | None] = {
        "bits": float(bits),
        "bpp": bits / (hr.shape[1] * hr.shape[2]),
        "bpp_lr": bits / (lr.shape[1] * lr.shape[2]),
        "encode_s": output.encode_s,
        "decode_s": output.decode_s,
        "sr_s": sr_s,
    }
    reasons: dict[str, str] = {}
    metric_keys = {}
    for name, metric, identity in context.metrics:
        metric_keys[name] = identity
        try:
            value = float(compute_metric(metric, reference, result, context.device,
                                         context.on_device))
        except NotApplicable as exc:
            values[name], reasons[name] = None, str(exc) or "not applicable"
            continue
        except Exception as exc:
            return unit.record(cell, error=f"metric {name}: {one_line(exc)}")
        if math.isnan(value):
            values[name], reasons[name] = None, "the metric returned NaN"
        else:
            values[name] = value
    return unit.record(cell, values=values, reasons=reasons, metric_keys=metric_keys,
                       digests=output_digests(output.payload, output.decoded, result))


def output_digests(payload: bytes, decoded: Any, result: Any) -> dict[str, str]:
    """What a cell produced, by content: equal digests = a bit-identical pipeline."""
    import hashlib

    from jcsr_bench.imaging.images import pixel_hash

    return {"payload": "sha256:" + hashlib.sha256(payload).hexdigest(),
            "decoded": pixel_hash(decoded), "output": pixel_hash(result)}
