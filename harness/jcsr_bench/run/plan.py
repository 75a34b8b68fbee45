"""The planner: registry + run options -> the cells to evaluate, with their keys.

Planning resolves the matrix (suite / lists / ``all``), builds the components, collects
every missing weight file up front (``jcsr_bench.run.requirements``) and computes each cell's
key; it runs no codec, SR model or metric:

    LR key    = hash(image content hash, scale, LR source/kernel, harness version)
    codec key = hash(LR key, codec identity, quality)
    cell key  = hash(codec key, SR identity -- the adapted model's for adaptive SR --,
                     metric identities)

A cell is computed when the store has no finished row with the same key (``--overwrite``
changes that rule). The cells of one (image, codec, quality) form a work unit
(``jcsr_bench.run.workunit``): the executor encodes once and runs every SR model of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jcsr_bench.components import consumes_latent, missing_weights_of, offers_latent
from jcsr_bench.imaging.images import pixel_hash
from jcsr_bench.kit.errors import (
    DataError,
    JcsrError,
    PluginError,
    RegistryError,
    WeightsError,
    one_line,
)
from jcsr_bench.kit.identity import digest
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.kit.version import __version__
from jcsr_bench.results.store import DB_NAME, Store, quality_text
from jcsr_bench.run.cache import Cache
from jcsr_bench.run.requirements import (
    Missing,
    Skipped,
    add_missing,
    check_weights,
    print_missing,
    print_skipped,
    skip_implicit,
    weights_ready,
)
from jcsr_bench.run.workunit import UnitCell, WorkUnit

OVERWRITE = ("never", "missing", "always")
SINGULAR = {"codecs": "codec", "datasets": "dataset", "sr": "sr", "metrics": "metric"}


@dataclass
class Settings:
    """The run options every stage reads (validated on construction)."""

    scale: int
    kernel: str
    limit: int | None
    device: str
    output: Path
    overwrite: str
    fail_fast: bool
    cache_root: Path | None = None  # codec-output cache (default: cache_dir()/cells)

    def __post_init__(self) -> None:
        if self.overwrite not in OVERWRITE:
            raise JcsrError(f"--overwrite must be one of {', '.join(OVERWRITE)}, got "
                            f"{self.overwrite!r}")
        if not isinstance(self.scale, int) or self.scale < 1:
            raise JcsrError(f"--scale must be a positive integer, got {self.scale!r}")
        if self.limit is not None and self.limit < 1:
            raise JcsrError(f"--limit must be >= 1, got {self.limit}")
        self.output = Path(self.output)

    @property
    def db_path(self) -> Path:
        return self.output / DB_NAME


@dataclass
class Component:
    kind: str
    name: str
    obj: Any
    explicit: bool
    qualities: list[Any] = field(default_factory=list)  # codecs only


@dataclass
class Cell:
    codec: Component
    quality: Any
    quality_index: int
    sr: Component
    model: Any  # the SR model for this (codec, quality): adapted when adaptive
    codec_key: str
    sr_key: str
    cell_key: str
    compute: bool


@dataclass
class ImagePlan:
    index: int
    name: str
    hash: str
    groups: dict[tuple[str, int], list[Cell]] = field(default_factory=dict)

    def pending(self) -> list[Cell]:
        return [c for cells in self.groups.values() for c in cells if c.compute]


@dataclass
class DatasetPlan:
    component: Component
    images: list[ImagePlan]
    by_name: bool  # images can be loaded one by one (``load(name)``)


class TrainingImagesWarning(UserWarning):
    """An adaptive SR model is evaluated on images it was trained on."""


@dataclass
class Plan:
    """Everything a run will do, before it does any of it."""

    settings: Settings
    suite: Any
    anchor: tuple[str, str] | None
    datasets: list[DatasetPlan]
    codecs: list[Component]
    srs: list[Component]
    metrics: list[tuple[str, Any, str]]  # (name, metric, identity)
    skipped: list[Skipped]
    missing: list[Missing] = field(default_factory=list)
    downloads: list[Missing] = field(default_factory=list)
    #: (dataset, codec+sr, cells, "N images x M qualities", by what) not in ``datasets``
    blocked_cells: list[tuple[str, str, int, str, str]] = field(default_factory=list)

    @property
    def blocked(self) -> list[Missing]:
        """Missing pieces of explicitly requested components: the run cannot start."""
        return [m for m in self.missing if m.explicit]

    @property
    def cells(self) -> list[tuple[str, str, str, str, str]]:
        """Every cell's names (dataset, image, codec, quality text, sr), in plan order."""
        return [(p.component.name, img.name, c.codec.name, quality_text(c.quality), c.sr.name)
                for p in self.datasets for img in p.images for cs in img.groups.values()
                for c in cs]

    @property
    def pending(self) -> int:
        return sum(len(img.pending()) for p in self.datasets for img in p.images)

    def units(self, dataset: DatasetPlan, image: ImagePlan) -> list[WorkUnit]:
        """The work units of one image: each (codec, quality) with cells to compute."""
        units = []
        for cells in image.groups.values():
            todo = [c for c in cells if c.compute]
            if not todo:
                continue
            first = todo[0]
            units.append(WorkUnit(
                dataset.component.name, image.name, image.index, image.hash,
                first.codec.name, first.quality, first.quality_index, first.codec_key,
                [UnitCell(c.sr.name, model_key(c), c.sr_key, c.cell_key) for c in todo]))
        return units

    def models(self) -> dict[tuple[str, str, str], Any]:
        """Every SR model a unit may call, by :func:`model_key`."""
        return {model_key(c): c.model for p in self.datasets for img in p.images
                for cs in img.groups.values() for c in cs if c.compute}


def model_key(cell: Cell) -> tuple[str, str, str]:
    return (cell.sr.name, cell.codec.name, quality_text(cell.quality))


class Planner:
    """Builds components (skipping broken default-suite ones) and the cells of a run."""

    def __init__(self, registry: Any, settings: Settings):
        self.registry = registry
        self.settings = settings
        self.skipped: list[Skipped] = []
        self.missing: list[Missing] = []
        self.downloads: list[Missing] = []  # a dry run online: fetched when the run starts
        self.metrics: list[tuple[str, Any, str]] = []
        self._adapted: dict[tuple[str, str, str], Any] = {}
        self.refused: set[tuple[str, str]] = set()  # (sr, codec) pairs check_latents refused

    # -- components --------------------------------------------------------------------
    def build(self, kind: str, name: str, explicit: bool, **overrides: Any) -> Any:
        """Construct a component; implicit (default-suite) ones are skipped on failure."""
        try:
            return self.registry.build(kind, name, **overrides)
        except Exception as exc:  # a plugin's constructor may raise anything
            if explicit and isinstance(exc, DataError | WeightsError):
                add_missing(self.missing, f"{SINGULAR.get(kind, kind)} {name}", one_line(exc),
                            True, SINGULAR.get(kind, kind), name)
                return None
            if explicit:
                if isinstance(exc, JcsrError):
                    raise
                raise PluginError(f"cannot build {kind} {name!r}: {one_line(exc)}") from exc
            self.skipped.append(Skipped(SINGULAR.get(kind, kind), name, one_line(exc)))
            return None

    def declared(self, kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """The run-level ``options`` that ``name``'s type declares in its params schema."""
        instance = self.registry.resolve(kind, name)
        schema = self.registry.manager.get(kind, instance.type).params or {}
        return {k: v for k, v in options.items() if k in schema}

    def components(self, selected: dict[str, list[tuple[str, bool]]],
                   sr_options: dict[str, Any]) -> dict[str, list[Component]]:
        """Build the selected datasets, codecs and SR models (run options applied)."""
        comps: dict[str, list[Component]] = {}
        for kind, items in selected.items():
            comps[kind] = []
            for name, explicit in items:
                options = {}
                if kind == "sr":  # a type with a `scale` parameter follows the run's scale
                    instance = self.registry.resolve("sr", name)
                    options = {k: v for k, v in self.declared(
                        "sr", name, {"scale": self.settings.scale}).items()
                        if k not in instance.params}
                    options.update(self.declared("sr", name, sr_options))
                obj = self.build(kind, name, explicit, **options)
                if obj is not None:
                    comps[kind].append(Component(kind, name, obj, explicit))
        return comps

    def build_metrics(self, selected: list[str] | None = None, fetch: bool = True) -> None:
        """The metrics to compute: ``selected`` (``--metrics``, presets expanded), else every
        registered type plus registry instances, but for opt-in types. A metric whose
        weights are missing offline is skipped with the remedy, or -- asked for by name --
        a missing piece that stops the run.
        Online, missing weights are downloaded (verified) first, except in a dry run."""
        manager = self.registry.manager
        if selected:
            names = self.registry.expand("metrics", selected)
        else:  # every type and instance, except opt-in ones (named to be computed)
            types = manager.types("metrics")
            names = [n for n, reg in types.items() if not reg.opt_in]
            names += [n for n, i in self.registry.instances("metrics").items()
                      if n not in names and not getattr(types.get(i.type), "opt_in", False)]
        explicit = bool(selected)
        for name in names:
            instance = self.registry.resolve("metrics", name)
            overrides = {k: v for k, v in self.declared(
                "metrics", name, {"border": self.settings.scale}).items()
                if k not in instance.params}
            metric = self.build("metrics", name, explicit, **overrides)
            if metric is None:
                continue
            if not weights_ready(self, "metric", name, explicit, missing_weights_of(metric),
                                 lambda metric=metric: _prefetch_metric(metric), fetch):
                continue
            identity = getattr(metric, "identity", None) or digest({
                "name": name, "class": f"{type(metric).__module__}.{type(metric).__qualname__}",
                "params": {**instance.params, **overrides},
                "source": manager.get("metrics", instance.type).source})
            self.metrics.append((name, metric, str(identity)))

    def adapted(self, sr: Component, codec: Component, quality: Any) -> Any:
        """The SR model after ``codec`` at ``quality`` (``for_codec`` for adaptive models)."""
        key = (sr.name, codec.name, quality_text(quality))
        if key not in self._adapted:
            for_codec = getattr(sr.obj, "for_codec", None)
            self._adapted[key] = (for_codec(codec.obj.identity, quality)
                                  if callable(for_codec) else sr.obj)
        return self._adapted[key]

    def forget_adapted(self) -> None:
        """Drop resolved adapted models (after training wrote new checkpoints)."""
        self._adapted.clear()

    def set_qualities(self, codec: Component, qualities: list[Any] | None,
                      suite: Any) -> Component | None:
        """The codec's rate points: --qualities, else the suite's, else its ladder.

        Qualities outside the instance's ladder rebuild it with ``qualities=`` (when its
        type takes that parameter), so a subset of the ladder keeps the codec's identity.
        """
        requested = qualities or (suite.qualities.get(codec.name) if suite is not None
                                  else None)
        ladder = list(codec.obj.qualities)
        if not requested:
            codec.qualities = ladder
            return codec
        requested = list(requested)
        if all(q in ladder for q in requested):
            codec.qualities = requested
            return codec
        instance = self.registry.resolve("codecs", codec.name)
        schema = self.registry.manager.get("codecs", instance.type).params or {}
        if "qualities" not in schema:
            reason = (f"qualities {[q for q in requested if q not in ladder]} are not in its "
                      f"ladder {ladder}")
            if codec.explicit:
                raise JcsrError(f"codec {codec.name}: {reason}")
            self.skipped.append(Skipped("codec", codec.name, reason))
            return None
        obj = self.build("codecs", codec.name, codec.explicit, qualities=requested)
        if obj is None:
            return None
        codec.obj, codec.qualities = obj, requested
        return codec

    def check_latents(self, codecs: list[Component], srs: list[Component]) -> set:
        """Refuse a latent-consuming SR model after a codec that offers no latent: the
        ``(sr, codec, quality)`` triples left out, each pair listed with the reason. An
        explicitly requested model that no selected codec can feed is an error."""
        left_out: set[tuple[str, str, str]] = set()
        for sr in srs:
            if not consumes_latent(sr.obj):
                continue
            refused = [codec for codec in codecs if not offers_latent(codec.obj)]
            for codec in refused:
                self.refused.add((sr.name, codec.name))
                left_out.update((sr.name, codec.name, quality_text(q)) for q in codec.qualities)
                self.skipped.append(Skipped("combination", f"{codec.name}+{sr.name}", (
                    f"SR {sr.name} decodes from the codec's latent (joint decoding), and "
                    f"codec {codec.name} offers none (no decode_latent/synthesize); pair it "
                    "with a learned codec such as a compressai one")))
            if sr.explicit and codecs and len(refused) == len(codecs):
                raise JcsrError(f"SR {sr.name} decodes from the codec's latent, and no selected "
                                f"codec ({', '.join(c.name for c in codecs)}) offers one; "
                                "choose a learned codec (compressai)")
        return left_out

    def check_scales(self, srs: list[Component]) -> list[Component]:
        """SR models must upscale by the run's scale, or be scale-1 (codec-only, ``none``)."""
        kept = []
        run_scale = self.settings.scale
        for sr in srs:
            try:
                scale, error = int(sr.obj.scale), ""
            except Exception as exc:
                scale, error = -1, one_line(exc)
            if scale in (1, run_scale):
                kept.append(sr)
                continue
            reason = error or (f"it upscales x{scale} but the run's scale is {run_scale} "
                               "(use --scale to match, or --sr none for codec-only)")
            if sr.explicit:
                raise JcsrError(f"SR {sr.name}: {reason}")
            self.skipped.append(Skipped("sr", sr.name, reason))
        return kept

    def warn_training_images(self, srs: list[Component], datasets: list[DatasetPlan]) -> None:
        """Warn when an adaptive SR model is evaluated on images of its own training
        dataset (same content), naming them: its scores there are not held out."""
        for sr in srs:
            try:
                name = getattr(sr.obj, "training_dataset", None)
                if not name:
                    continue
                hashes = self._content_hashes(self.registry.build("datasets", name))
            except Exception:  # noqa: BLE001 - an unreadable training set: nothing to compare
                continue
            seen = [f"{d.component.name}/{image.name}" for d in datasets for image in d.images
                    if image.hash in hashes]
            if seen:
                warnings.warn(TrainingImagesWarning(
                    f"sr {sr.name} is evaluated on {len(seen)} image(s) it was trained "
                    f"on (training dataset {name}): {', '.join(seen)}; its scores there are "
                    "not a held-out measure (evaluate it on images outside its training set, "
                    "e.g. samples-test for samples-train)"), stacklevel=2)

    @staticmethod
    def _content_hashes(dataset: Any) -> set[str]:
        """Every image's content hash, as :meth:`image_list` computes it (no limit)."""
        names = getattr(dataset, "names", None)
        if (isinstance(names, list | tuple) and callable(getattr(dataset, "load", None))
                and callable(getattr(dataset, "content_hash", None))):
            return {"file:" + dataset.content_hash(n) for n in names}
        return {pixel_hash(image) for _, image in iterate(dataset, None)}

    # -- images and cells ----------------------------------------------------------------
    def image_list(self, dataset: Any) -> tuple[list[ImagePlan], bool]:
        """Names and content hashes; file hashes when the dataset offers them (no decode)."""
        limit = self.settings.limit
        names = getattr(dataset, "names", None)
        if (isinstance(names, list | tuple) and callable(getattr(dataset, "load", None))
                and callable(getattr(dataset, "content_hash", None))):
            names = list(names)[:limit] if limit else list(names)
            return [ImagePlan(i, str(n), "file:" + dataset.content_hash(n))
                    for i, n in enumerate(names)], True
        images = []
        for i, (name, image) in enumerate(iterate(dataset, limit)):
            images.append(ImagePlan(i, str(name), pixel_hash(image)))
        return images, False

    def lr_label(self, dataset: Any, name: str) -> str:
        """What the LR image is made from: the kernel, or the dataset's own LR file."""
        if self.settings.scale == 1:
            return "identity"
        lr_image = getattr(dataset, "lr_image", None)
        if callable(lr_image):
            lr = lr_image(name, self.settings.scale)
            if lr is not None:
                return "dataset:" + pixel_hash(lr)
        return f"kernel:{self.settings.kernel}"

    def cells(self, datasets: list[Component], codecs: list[Component],
              srs: list[Component], left_out: set) -> list[DatasetPlan]:
        """Every cell with its keys, marked ``compute`` when the store lacks it."""
        states: dict = {}
        if self.settings.db_path.is_file():
            with Store(self.settings.db_path) as store:
                states = store.states()
        metric_ids = {name: identity for name, _, identity in self.metrics}
        plans = []
        for ds in datasets:
            try:
                images, by_name = self.image_list(ds.obj)
            except Exception as exc:
                if ds.explicit:
                    raise DataError(f"dataset {ds.name}: {one_line(exc)}") from exc
                self.skipped.append(Skipped("dataset", ds.name, one_line(exc)))
                continue
            for image in images:
                lr_key = digest({"image": image.hash, "scale": self.settings.scale,
                                 "lr": self.lr_label(ds.obj, image.name),
                                 "harness": __version__}, 32)
                for codec in codecs:
                    for qi, quality in enumerate(codec.qualities):
                        codec_key = digest({"lr": lr_key, "codec": codec.obj.identity,
                                            "quality": quality_text(quality)}, 32)
                        cells = []
                        for sr in srs:
                            if (sr.name, codec.name, quality_text(quality)) in left_out:
                                continue
                            model = self.adapted(sr, codec, quality)
                            sr_key = str(model.identity)
                            cell_key = digest({"codec": codec_key, "sr": sr_key,
                                               "metrics": metric_ids}, 32)
                            names = (ds.name, image.name, codec.name, quality_text(quality),
                                     sr.name)
                            cells.append(Cell(codec, quality, qi, sr, model, codec_key,
                                              sr_key, cell_key,
                                              self._needs(states.get(names), cell_key)))
                        if cells:
                            image.groups[(codec.name, qi)] = cells
            plans.append(DatasetPlan(ds, images, by_name))
        return plans

    def _needs(self, state: tuple[str, str] | None, cell_key: str) -> bool:
        overwrite = self.settings.overwrite
        if overwrite == "always" or state is None:
            return True
        if overwrite == "never":
            return False
        return state != (cell_key, "ok")


def _prefetch_metric(metric: Any) -> list[str]:
    """Online: download and verify a metric's weights now; what still fails is missing."""
    fetch_weights = getattr(metric, "fetch_weights", None)
    if not callable(fetch_weights):
        return missing_weights_of(metric)
    try:
        fetch_weights()
    except Exception as exc:
        return [one_line(exc)]
    return []


def iterate(dataset: Any, limit: int | None) -> Iterator[tuple[str, Any]]:
    """A dataset's ``(name, image)`` pairs, the first ``limit`` only."""
    for i, item in enumerate(dataset):
        if limit is not None and i >= limit:
            return
        yield item


# -- selection -------------------------------------------------------------------------------
def select(registry: Any, suite: str | None, lists: dict[str, list[str] | None]):
    """(suite, {kind: [(name, explicit)]}, is_default_run)."""
    chosen = None
    suite_explicit = suite is not None
    if suite is not None:
        if suite not in registry.suites:
            raise RegistryError(f"unknown suite {suite!r}.{did_you_mean(suite, registry.suites)}"
                                " `jcsr-bench list suites` shows them.")
        chosen = registry.suites[suite]
    elif not all(lists.values()):
        chosen = registry.suites.get("default")
        if chosen is None:
            raise RegistryError("no `default` suite in the registry: name --dataset, --codec "
                                "and --sr, or --suite")
    fields = {"datasets": "datasets", "codecs": "codecs", "sr": "sr"}
    selected = {}
    for kind, given in lists.items():
        if given:
            selected[kind] = [(n, True) for n in registry.expand(kind, given)]
        else:
            names = registry.expand(kind, getattr(chosen, fields[kind]))
            selected[kind] = [(n, suite_explicit) for n in names]
        if not selected[kind]:
            raise RegistryError(f"no {kind} selected: give --{kind.rstrip('s')} NAME")
    return chosen, selected, suite is None and not any(lists.values())


def parse_anchor(anchor: str | None, suite: Any) -> tuple[str, str] | None:
    if anchor:
        from jcsr_bench.results.labels import parse_label

        return parse_label(anchor)
    return tuple(suite.anchor) if suite is not None and suite.anchor else None


def make_plan(registry: Any, settings: Settings, *, suite: str | None,
              lists: dict[str, list[str] | None], qualities: list[Any] | None,
              sr_options: dict[str, Any], anchor: str | None,
              metrics: list[str] | None = None,
              train: Callable[[list], None] | None = None, fetch: bool = True) -> Plan:
    """Select, build and check the components, then key every cell (no compute).

    ``train`` (``run --train``) is called with the untrained adaptive models before the
    missing ones are reported; the planner itself never trains. ``fetch`` (off for a
    dry run) downloads missing weights when online.
    """
    chosen, selected, _ = select(registry, suite, lists)
    anchor_pair = parse_anchor(anchor, chosen)
    planner = Planner(registry, settings)
    comps = planner.components(selected, sr_options)
    requested = [c for c in (planner.set_qualities(c, qualities, chosen)
                             for c in comps["codecs"]) if c is not None]
    refused = planner.check_latents(requested, comps["sr"])
    codecs, srs, left_out = check_weights(planner, requested, comps["sr"], train=train,
                                          fetch=fetch)
    left_out |= refused
    srs = planner.check_scales(srs)
    planner.build_metrics(metrics or getattr(chosen, "metrics", None) or None, fetch=fetch)
    skip_implicit(planner)
    datasets = planner.cells(comps["datasets"], codecs, srs, left_out)
    planner.warn_training_images(srs, datasets)
    blocked = _blocked_cells(datasets, requested, comps["sr"], codecs, srs, left_out,
                             planner.missing)
    return Plan(settings, chosen, anchor_pair, datasets, codecs, srs, planner.metrics,
                planner.skipped, planner.missing, planner.downloads, blocked)


def _blocked_cells(datasets: list[DatasetPlan], codecs: list[Component],
                   srs: list[Component], ok_codecs: list[Component], ok_srs: list[Component],
                   left_out: set, missing: list[Missing]) -> list[tuple[str, str, int, str, str]]:
    """The explicitly requested cells a missing piece keeps out of the plan, and why."""
    good_codecs, good_srs = {c.name for c in ok_codecs}, {s.name for s in ok_srs}
    untrained = {who for m in missing for who in m.needed_by}
    found = []
    for d in datasets:
        n = len(d.images)
        for codec in codecs:
            for sr in srs:
                if not (codec.explicit or sr.explicit):
                    continue  # a default-suite component: listed as skipped instead
                why = [f"codec {codec.name}'s weights"] if codec.name not in good_codecs else []
                why += [f"sr {sr.name}'s weights"] if sr.name not in good_srs else []
                if why and any(w.startswith(f"sr {sr.name} after codec {codec.name},")
                               for w in untrained):
                    why.append(f"sr {sr.name} untrained for codec {codec.name}")
                qualities = list(codec.qualities)
                if not why:
                    qualities = [q for q in qualities
                                 if (sr.name, codec.name, quality_text(q)) in left_out]
                    why = [f"sr {sr.name} untrained for codec {codec.name}"]
                if qualities:
                    found.append((d.component.name, f"{codec.name}+{sr.name}",
                                  n * len(qualities),
                                  f"{n} images x {len(qualities)} qualities", ", ".join(why)))
    return found


def print_plan(plan: Plan, stream: TextIO) -> None:
    """The dry run's table: cells per combination, to compute and stored."""
    from tabulate import tabulate

    settings = plan.settings
    cache = Cache(settings.cache_root)
    rows: dict[tuple[str, str, str], list[int]] = {}
    stages = cached_stages = 0
    for dataset in plan.datasets:
        for image in dataset.images:
            for cells in image.groups.values():
                for cell in cells:
                    row = rows.setdefault((dataset.component.name, cell.codec.name,
                                           cell.sr.name), [0, 0, 0])
                    row[0] += 1
                    row[1 if cell.compute else 2] += 1
                if any(c.compute for c in cells):
                    stages += 1
                    if settings.overwrite != "always" and \
                            (cache.entry(cells[0].codec_key) / "meta.json").is_file():
                        cached_stages += 1
    table = [[d, f"{c}+{s}", n, todo, done] for (d, c, s), (n, todo, done) in rows.items()]
    print(tabulate(table, headers=["dataset", "codec+sr", "cells", "to compute", "stored"]),
          file=stream)
    if plan.blocked_cells:
        total = sum(b[2] for b in plan.blocked_cells)
        print(f"\nblocked ({total} cells, until the missing pieces below are done):",
              file=stream)
        for dataset, label, cells, shape, why in plan.blocked_cells:
            print(f"  {dataset}: {label}: {cells} cells ({shape}), by {why}", file=stream)
    print_skipped(plan.skipped, stream)
    cells, pending = len(plan.cells), plan.pending
    print(f"\nplan: {cells} cells, {pending} to compute, {cells - pending} already stored; "
          f"codec runs needed: {stages - cached_stages} (+{cached_stages} in the disk cache); "
          f"scale {settings.scale}, kernel {settings.kernel}, device {settings.device}; "
          f"output {settings.output} (dry run: nothing computed)", file=stream)
    print_missing(plan.missing, plan.downloads, stream)
