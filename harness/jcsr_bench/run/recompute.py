"""Recompute stored cells' images (HR, LR, decoded, SR output) through the work unit's
stages -- the code that scored them -- for the visual grid and the HTML report.

The codec output comes from the engine's disk cache when present (by the codec key
stored with each cell), else the codec runs again and the result is cached. Components
whose identity changed since the run are warned about through ``warn``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jcsr_bench.imaging.images import pixel_hash
from jcsr_bench.kit.errors import DataError, RegistryError
from jcsr_bench.results.store import quality_text
from jcsr_bench.results.stored_cells import StoredCell
from jcsr_bench.run.cache import Cache
from jcsr_bench.run.workunit import (
    UnitCell,
    UnitContext,
    WorkUnit,
    codec_cache_info,
    codec_stage,
    hr_and_lr,
    sr_stage,
)


class Recompute:
    """Rebuilds the shown cells' outputs through the work unit's stages
    (``jcsr_bench.run.workunit``): the LR image, the codec output (the cache, else the codec),
    then SR -- the code that scored them."""

    def __init__(self, registry: Any, dataset: str, image: str, runs: dict[int, dict],
                 meta: dict, device: str, warn: Callable[[str], None]):
        self.warn = warn
        self.registry, self.dataset_name, self.image = registry, dataset, image
        self.runs, self.meta, self.device = runs, meta, device
        self.cache = Cache()
        self.dataset = self._build("datasets", dataset)
        self.hr = self._load_hr()
        self._lr: dict[tuple[int, str], Any] = {}
        self._codecs: dict[str, Any] = {}
        self._srs: dict[str, Any] = {}
        self._decoded: dict[str, Any] = {}
        self.codec_runs = self.cache_hits = 0

    def _build(self, kind: str, name: str, **overrides: Any) -> Any:
        try:
            return self.registry.build(kind, name, **overrides)
        except RegistryError as exc:
            raise RegistryError(f"{exc} (pass the run's registry files with --registry)") \
                from exc

    def _load_hr(self) -> Any:
        load = getattr(self.dataset, "load", None)
        if callable(load):
            return load(self.image)
        for name, image in self.dataset:
            if str(name) == self.image:
                return image
        raise DataError(f"image {self.image!r} is no longer in dataset {self.dataset_name}")

    def check_hash(self, stored: str) -> None:
        if stored.startswith("file:") and callable(getattr(self.dataset, "content_hash", None)):
            now = "file:" + self.dataset.content_hash(self.image)
        else:
            now = pixel_hash(self.hr)
        if now != stored:
            self.warn(f"image {self.dataset_name}/{self.image} changed since the run: the tiles "
                  "show the current file, the scores are the stored ones")

    def config(self, cell: StoredCell) -> dict:
        meta = self.runs.get(cell.run_id) or self.meta
        return meta.get("config") or {}

    def scale(self, cell: StoredCell) -> int:
        return int(self.config(cell).get("scale", 4))

    def pair(self, cell: StoredCell) -> tuple[Any, Any]:
        """(mod-cropped HR, LR) as the run that stored ``cell`` made them (the work unit's
        own LR step, with that run's scale and kernel)."""
        config = self.config(cell)
        scale, kernel = int(config.get("scale", 4)), str(config.get("kernel", "matlab"))
        key = (scale, kernel)
        if key not in self._lr:
            self._lr[key] = hr_and_lr(self.hr, self.image, scale, kernel, self.dataset)
        return self._lr[key]

    def codec_identity(self, cell: StoredCell) -> str | None:
        meta = self.runs.get(cell.run_id) or self.meta
        return ((meta.get("components") or {}).get("codecs") or {}).get(cell.codec)

    def codec(self, cell: StoredCell) -> Any:
        if cell.codec not in self._codecs:
            obj = self._build("codecs", cell.codec)
            wanted = list((self.config(cell).get("qualities") or {}).get(cell.codec) or [])
            if wanted and not all(q in list(obj.qualities) for q in wanted):
                obj = self._build("codecs", cell.codec, qualities=wanted)
            stored = self.codec_identity(cell)
            if stored is not None and str(obj.identity) != stored:
                self.warn(f"codec {cell.codec} is now {obj.identity}, the run used {stored}: "
                      "its recomputed tiles may differ from what was scored")
            self._codecs[cell.codec] = obj  # the unit's context moves it to the device
        return self._codecs[cell.codec]

    def _unit(self, cell: StoredCell) -> tuple[Any, Any, Any]:
        """The work unit of ``cell`` (its codec, quality and SR model) and its context."""
        key = (cell.sr, cell.codec, quality_text(cell.quality))
        unit_cell = UnitCell(cell.sr, key, cell.sr_key, "")
        unit = WorkUnit(cell.dataset, cell.image, 0, cell.image_hash, cell.codec, cell.quality,
                        0, cell.codec_key, [unit_cell])
        context = UnitContext(self.scale(cell), str(self.config(cell).get("kernel", "matlab")),
                              self.device, {cell.codec: self.codec(cell)},
                              {key: self.sr(cell)}, [])
        return unit, unit_cell, context

    def decoded(self, cell: StoredCell) -> Any:
        """The codec output: the engine's disk cache, else encode + decode (and cache it)."""
        if cell.codec_key not in self._decoded:
            unit, _, context = self._unit(cell)
            _, lr = self.pair(cell)
            output, fresh = codec_stage(unit, context, lr, self.cache.load_codec(cell.codec_key))
            if fresh is None:
                self.cache_hits += 1
            else:
                self.codec_runs += 1
                self.cache.save_codec(cell.codec_key, fresh, {
                    **codec_cache_info(unit, context.codecs[cell.codec]),
                    "by": "jcsr-bench visual"})
            self._decoded[cell.codec_key] = output
        return self._decoded[cell.codec_key].decoded

    def sr(self, cell: StoredCell) -> Any:
        codec_identity = self.codec_identity(cell)
        key = (cell.sr, cell.codec, json.dumps(cell.quality))
        if key not in self._srs:
            base = self._srs.get(cell.sr)
            if base is None:
                base = self._srs[cell.sr] = self._build("sr", cell.sr)
            model = base
            for_codec = getattr(base, "for_codec", None)
            if callable(for_codec):
                model = for_codec(codec_identity or str(self.codec(cell).identity), cell.quality)
            if str(model.identity) != cell.sr_key:
                self.warn(f"SR {cell.sr} is now {model.identity}, the run used {cell.sr_key}: "
                      "its recomputed tiles may differ from what was scored")
            self._srs[key] = model
        return self._srs[key]

    def output(self, cell: StoredCell) -> tuple[Any, Any]:
        """(SR output, its reference image) for one stored cell, on the CPU."""
        _, unit_cell, context = self._unit(cell)
        hr, lr = self.pair(cell)
        decoded = self.decoded(cell)
        result, reference, _ = sr_stage(unit_cell, context, hr, lr, decoded,
                                        self._decoded[cell.codec_key].latent, cell.codec)
        return result, reference
