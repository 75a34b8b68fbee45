"""The evaluation engine: every dataset x codec x quality x SR cell, no work done twice.

Planning resolves the matrix (suite / lists / ``all``), builds the components, reports
every missing weight file up front (before any compute) and computes each cell's key:

    LR key    = hash(image content hash, scale, LR source/kernel, harness version)
    codec key = hash(LR key, codec identity, quality)
    cell key  = hash(codec key, SR identity -- the adapted model's for adaptive SR --,
                     metric identities)

Execution walks images in order: the LR image is made once per image, each (codec,
quality) is encoded and decoded once whatever the number of SR models (and served from
the on-disk cache on later runs), then every SR model upscales and is scored. Each
finished cell is one transaction in the SQLite store, so a killed run resumes where it
stopped; a cell whose key changed (new weights) is recomputed, others are not.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jcsr_bench import __version__
from jcsr_bench.components import NotApplicable
from jcsr_bench.errors import DataError, JcsrError, PluginError, RegistryError, WeightsError
from jcsr_bench.identity import digest
from jcsr_bench.store import DB_NAME, CellRecord, Store, now_iso, quality_text
from jcsr_bench.suggest import did_you_mean

OVERWRITE = ("never", "missing", "always")
SINGULAR = {"codecs": "codec", "datasets": "dataset", "sr": "sr", "metrics": "metric"}
RATE_METRICS = ("bits", "bpp", "bpp_lr")
TIMING_METRICS = ("encode_s", "decode_s", "sr_s")
CONVENTIONS = (
    "bits = 8 x payload bytes (headers included); bpp = bits / HR pixels; bpp_lr = bits / "
    "codec-input pixels; psnr-rgb: 8-bit RGB, range 255, per image; psnr-y: BT.601 luma "
    "16-235, border = scale; ms-ssim-rgb: pytorch-msssim, range 255, linear, n/a when the "
    "short side <= 160 px; curves average per-image values; SR 'none' (scale 1) is scored "
    "against the codec input"
)


# -- public results ----------------------------------------------------------------------
@dataclass
class Skipped:
    """A component left out of the run (default suite only), with the remedy."""

    kind: str
    name: str
    reason: str


@dataclass
class Failure:
    dataset: str
    image: str
    codec: str
    quality: Any
    sr: str
    error: str


@dataclass
class RunSummary:
    """What ``run`` did; ``exit_code`` is the CLI's (0 ok, 1 some cell failed)."""

    exit_code: int
    output: Path
    db_path: Path
    cells: int = 0  # cells in the matrix
    computed: int = 0  # cells evaluated by this run
    cached: int = 0  # cells already in the store
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    codec_runs: int = 0  # encode + decode calls made
    codec_cache_hits: int = 0  # codec outputs served from the disk cache
    elapsed_s: float = 0.0
    files: list[Path] = field(default_factory=list)
    dry_run: bool = False


# -- planning structures -------------------------------------------------------------------
@dataclass
class _Component:
    kind: str
    name: str
    obj: Any
    explicit: bool
    qualities: list[Any] = field(default_factory=list)  # codecs only


@dataclass
class _Cell:
    codec: _Component
    quality: Any
    quality_index: int
    sr: _Component
    model: Any  # the SR model for this (codec, quality): adapted when adaptive
    codec_key: str
    sr_key: str
    cell_key: str
    compute: bool


@dataclass
class _Image:
    index: int
    name: str
    hash: str
    groups: dict[tuple[str, int], list[_Cell]] = field(default_factory=dict)

    def pending(self) -> list[_Cell]:
        return [c for cells in self.groups.values() for c in cells if c.compute]


@dataclass
class _DatasetPlan:
    component: _Component
    images: list[_Image]
    by_name: bool  # images can be loaded one by one (``load(name)``)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, JcsrError) else f"{type(exc).__name__}: {text}"


def pixel_hash(image: Any) -> str:
    """Content hash of an image tensor (shape + bytes)."""
    import hashlib

    data = image.detach().cpu().contiguous().numpy().tobytes()
    return "px:" + hashlib.sha256(f"{list(image.shape)}:".encode() + data).hexdigest()


def _check_image(image: Any, what: str, shape: Sequence[int] | None = None) -> Any:
    """The shared stage-boundary check, then onto the CPU (a plugin may hand back CUDA)."""
    from jcsr_bench.images import check_image

    image = check_image(image, what, shape)
    return image.cpu() if image.device.type != "cpu" else image


# -- the engine ------------------------------------------------------------------------------
class Engine:
    """One run: plan, check weights, execute, export. ``run()`` is the entry point."""

    def __init__(self, registry: Any, *, scale: int, kernel: str, limit: int | None,
                 device: str, output: Path, overwrite: str, fail_fast: bool,
                 progress: bool | None, stream: TextIO, cache_root: Path | None):
        from jcsr_bench.cache import Cache

        if overwrite not in OVERWRITE:
            raise JcsrError(f"--overwrite must be one of {', '.join(OVERWRITE)}, got "
                            f"{overwrite!r}")
        if not isinstance(scale, int) or scale < 1:
            raise JcsrError(f"--scale must be a positive integer, got {scale!r}")
        if limit is not None and limit < 1:
            raise JcsrError(f"--limit must be >= 1, got {limit}")
        self.registry = registry
        self.scale, self.kernel, self.limit = scale, kernel, limit
        self.device = device
        self.output = Path(output)
        self.db_path = self.output / DB_NAME
        self.overwrite, self.fail_fast = overwrite, fail_fast
        self.progress, self.stream = progress, stream
        self.cache = Cache(cache_root)
        self.skipped: list[Skipped] = []
        self.metrics: list[tuple[str, Any, str]] = []  # (name, metric, identity)
        self._moved: dict[int, Any] = {}
        self._adapted: dict[tuple[str, str, str], Any] = {}
        self.codec_runs = 0
        self.codec_hits = 0

    # -- components --------------------------------------------------------------------
    def build(self, kind: str, name: str, explicit: bool, **overrides: Any) -> Any:
        """Construct a component; implicit (default-suite) ones are skipped on failure."""
        try:
            return self.registry.build(kind, name, **overrides)
        except Exception as exc:  # a plugin's constructor may raise anything
            if explicit:
                if isinstance(exc, JcsrError):
                    raise
                raise PluginError(f"cannot build {kind} {name!r}: {_one_line(exc)}") from exc
            self.skipped.append(Skipped(SINGULAR.get(kind, kind), name, _one_line(exc)))
            return None

    def declared(self, kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """The run-level ``options`` that ``name``'s type declares in its params schema."""
        instance = self.registry.resolve(kind, name)
        schema = self.registry.manager.get(kind, instance.type).params or {}
        return {k: v for k, v in options.items() if k in schema}

    def build_metrics(self) -> None:
        """Every registered metric type (built-in and third-party) plus registry instances."""
        manager = self.registry.manager
        names = list(manager.types("metrics"))
        names += [n for n in self.registry.instances("metrics") if n not in names]
        for name in names:
            instance = self.registry.resolve("metrics", name)
            overrides = {k: v for k, v in self.declared("metrics", name,
                                                        {"border": self.scale}).items()
                         if k not in instance.params}
            metric = self.build("metrics", name, False, **overrides)
            if metric is None:
                continue
            identity = getattr(metric, "identity", None) or digest({
                "name": name, "class": f"{type(metric).__module__}.{type(metric).__qualname__}",
                "params": {**instance.params, **overrides},
                "source": manager.get("metrics", instance.type).source})
            self.metrics.append((name, metric, str(identity)))

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

    def adapted(self, sr: _Component, codec: _Component, quality: Any) -> Any:
        """The SR model after ``codec`` at ``quality`` (``for_codec`` for adaptive models)."""
        key = (sr.name, codec.name, quality_text(quality))
        if key not in self._adapted:
            for_codec = getattr(sr.obj, "for_codec", None)
            self._adapted[key] = (for_codec(codec.obj.identity, quality)
                                  if callable(for_codec) else sr.obj)
        return self._adapted[key]

    # -- missing weights -----------------------------------------------------------------
    def check_weights(self, codecs: list[_Component], srs: list[_Component], *,
                      train: bool) -> tuple[list[_Component], list[_Component], set]:
        """Report all missing weights before any compute.

        Explicitly requested components raise ``WeightsError`` with every remedy;
        default-suite ones are skipped (listed with the remedy). Returns the codecs and
        SR models to run and the (sr, codec, quality) triples left out.
        """
        from jcsr_bench.paths import offline

        problems: list[tuple[bool, str, str, str]] = []  # explicit, kind, name, text
        ok_codecs = []
        for codec in codecs:
            texts = self._missing(codec.obj, codec.qualities)
            if texts and not offline():
                texts = self._prefetch_codec(codec, texts)
            if texts:
                problems.extend((codec.explicit, "codec", codec.name, t) for t in texts)
            else:
                ok_codecs.append(codec)
        ok_srs = []
        for sr in srs:
            texts = self._missing(sr.obj)
            if texts and not offline():
                texts = self._prefetch_sr(sr, texts)
            if texts:
                problems.extend((sr.explicit, "sr", sr.name, t) for t in texts)
            else:
                ok_srs.append(sr)
        left_out: set[tuple[str, str, str]] = set()
        for sr in list(ok_srs):
            if not callable(getattr(sr.obj, "for_codec", None)):
                continue
            missing = self._untrained(sr, ok_codecs)
            if missing and train:
                self._train(sr, missing)
                self._adapted.clear()
                missing = self._untrained(sr, ok_codecs)
            for codec, qualities, texts in missing:
                explicit = sr.explicit or codec.explicit
                qs = ",".join(str(q) for q in qualities)
                remedy = (f"train them: `jcsr-bench train-sr --sr {sr.name} --codec "
                          f"{codec.name} --qualities {qs}` (or add --train to this run)")
                other = [text for untrained, text in texts if not untrained]
                if other:
                    remedy = other[0]
                problems.append((explicit, "sr", sr.name,
                                 f"after codec {codec.name}, quality {qs}: {remedy}"))
                left_out.update((sr.name, codec.name, quality_text(q)) for q in qualities)
        if any(explicit for explicit, *_ in problems):
            lines = [f"  {kind} {name}: {text}" for _, kind, name, text in problems]
            raise WeightsError("missing weights (nothing was computed):\n" + "\n".join(lines))
        for _, kind, name, text in problems:
            self.skipped.append(Skipped(kind, name, f"missing weights: {text}"))
        return ok_codecs, ok_srs, left_out

    @staticmethod
    def _missing(obj: Any, *args: Any) -> list[str]:
        fn = getattr(obj, "missing_weights", None)
        return [str(item) for item in (fn(*args) or [])] if callable(fn) else []

    def _prefetch_codec(self, codec: _Component, texts: list[str]) -> list[str]:
        """Online: obtain (download + verify) weights now; what still fails is missing."""
        load = getattr(codec.obj, "model", None)
        if not callable(load):
            return []  # the component downloads on first use
        failed = []
        for quality in codec.qualities:
            try:
                load(quality)
            except Exception as exc:
                failed.append(f"quality {quality}: {_one_line(exc)}")
        return failed and texts + failed

    def _prefetch_sr(self, sr: _Component, texts: list[str]) -> list[str]:
        try:
            _ = sr.obj.identity, sr.obj.scale  # resolves (downloads) the weights
        except Exception as exc:
            return [*texts, _one_line(exc)]
        return []

    def _untrained(self, sr: _Component, codecs: list[_Component]) -> list[tuple]:
        """``[(codec, qualities, [(is TrainedWeightsMissing, message)])]`` not loadable."""
        try:
            from jcsr_bench.plugins.esrgan import TrainedWeightsMissing
        except ImportError:  # pragma: no cover - the built-in plugin is always there
            TrainedWeightsMissing = WeightsError  # noqa: N806
        missing = []
        for codec in codecs:
            qualities, texts = [], []
            for quality in codec.qualities:
                try:
                    self.adapted(sr, codec, quality)
                except Exception as exc:
                    qualities.append(quality)
                    texts.append((isinstance(exc, TrainedWeightsMissing), _one_line(exc)))
            if qualities:
                missing.append((codec, qualities, texts))
        return missing

    def _train(self, sr: _Component, missing: list[tuple]) -> None:
        from jcsr_bench.training.sr import train_missing

        for codec, qualities, _ in missing:
            print(f"training {sr.name} for codec {codec.name} at qualities "
                  f"{', '.join(map(str, qualities))} (--train)", file=self.stream)
            train_missing(self.registry, sr.name, codec.name, list(qualities),
                          device=self.device)

    # -- planning --------------------------------------------------------------------------
    def image_list(self, dataset: Any) -> tuple[list[_Image], bool]:
        """Names and content hashes; file hashes when the dataset offers them (no decode)."""
        names = getattr(dataset, "names", None)
        if (isinstance(names, list | tuple) and callable(getattr(dataset, "load", None))
                and callable(getattr(dataset, "content_hash", None))):
            names = list(names)[: self.limit] if self.limit else list(names)
            return [_Image(i, str(n), "file:" + dataset.content_hash(n))
                    for i, n in enumerate(names)], True
        images = []
        for i, (name, image) in enumerate(self._iterate(dataset)):
            images.append(_Image(i, str(name), pixel_hash(image)))
        return images, False

    def _iterate(self, dataset: Any) -> Iterator[tuple[str, Any]]:
        for i, item in enumerate(dataset):
            if self.limit is not None and i >= self.limit:
                return
            yield item

    def lr_label(self, dataset: Any, name: str) -> str:
        """What the LR image is made from: the kernel, or the dataset's own LR file."""
        if self.scale == 1:
            return "identity"
        lr_image = getattr(dataset, "lr_image", None)
        if callable(lr_image):
            lr = lr_image(name, self.scale)
            if lr is not None:
                return "dataset:" + pixel_hash(lr)
        return f"kernel:{self.kernel}"

    def plan(self, datasets: list[_Component], codecs: list[_Component],
             srs: list[_Component], left_out: set) -> list[_DatasetPlan]:
        states: dict = {}
        if self.db_path.is_file():
            with Store(self.db_path) as store:
                states = store.states()
        metric_ids = {name: identity for name, _, identity in self.metrics}
        plans = []
        for ds in datasets:
            try:
                images, by_name = self.image_list(ds.obj)
            except Exception as exc:
                if ds.explicit:
                    raise DataError(f"dataset {ds.name}: {_one_line(exc)}") from exc
                self.skipped.append(Skipped("dataset", ds.name, _one_line(exc)))
                continue
            for image in images:
                lr_key = digest({"image": image.hash, "scale": self.scale,
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
                            cells.append(_Cell(codec, quality, qi, sr, model, codec_key,
                                               sr_key, cell_key,
                                               self._needs(states.get(names), cell_key)))
                        if cells:
                            image.groups[(codec.name, qi)] = cells
            plans.append(_DatasetPlan(ds, images, by_name))
        return plans

    def _needs(self, state: tuple[str, str] | None, cell_key: str) -> bool:
        if self.overwrite == "always" or state is None:
            return True
        if self.overwrite == "never":
            return False
        return state != (cell_key, "ok")

    # -- execution -------------------------------------------------------------------------
    def execute(self, plans: list[_DatasetPlan], store: Store, run_id: int) -> tuple[int, bool]:
        """Evaluate every pending cell; returns (cells computed, stopped by fail-fast)."""
        from tqdm import tqdm

        total = sum(len(img.pending()) for plan in plans for img in plan.images)
        bar = tqdm(total=total, unit="cell", desc="jcsr-bench", file=sys.stderr,
                   disable=(None if self.progress is None else not self.progress),
                   dynamic_ncols=True)
        done = 0
        try:
            for plan in plans:
                pending = {img.index: img for img in plan.images if img.pending()}
                if not pending:
                    continue
                for image, hr, error in self._load(plan, pending):
                    for cell, record in self._evaluate_image(plan, image, hr, error):
                        store.record(record, run_id)
                        done += 1
                        bar.update(1)
                        bar.set_postfix_str(f"{cell.codec.name} q={cell.quality} "
                                            f"{cell.sr.name}", refresh=False)
                        if record.status != "ok" and self.fail_fast:
                            return done, True
        finally:
            bar.close()
        return done, False

    def _load(self, plan: _DatasetPlan, pending: dict[int, _Image]) -> Iterator:
        """Yield ``(image plan, HR tensor or None, error or None)`` for pending images."""
        dataset = plan.component.obj
        if plan.by_name:
            for image in pending.values():
                try:
                    yield image, dataset.load(image.name), None
                except Exception as exc:
                    yield image, None, f"loading image: {_one_line(exc)}"
            return
        seen = set()
        try:
            for i, (name, hr) in enumerate(self._iterate(dataset)):
                image = pending.get(i)
                if image is None:
                    continue
                seen.add(i)
                if str(name) != image.name or pixel_hash(hr) != image.hash:
                    yield image, None, (f"image {name!r} changed since planning (dataset "
                                        "order or content is not stable)")
                else:
                    yield image, hr, None
        except Exception as exc:
            error = f"reading dataset {plan.component.name}: {_one_line(exc)}"
        else:
            error = "image missing from the dataset since planning"
        for i, image in pending.items():
            if i not in seen:
                yield image, None, error

    def _evaluate_image(self, plan: _DatasetPlan, image: _Image, hr: Any,
                        error: str | None) -> Iterator[tuple[_Cell, CellRecord]]:
        ds = plan.component
        if error is None:
            try:
                from jcsr_bench.lr import lr_for, mod_crop

                hr = _check_image(hr, f"image {image.name}")
                hr_c = mod_crop(hr, self.scale)
                lr = hr_c if self.scale == 1 else _check_image(
                    lr_for(hr, self.scale, self.kernel, dataset=ds.obj, name=image.name),
                    f"LR image of {image.name}")
            except Exception as exc:
                error = f"making the LR image: {_one_line(exc)}"
        for cells in image.groups.values():
            todo = [c for c in cells if c.compute]
            if not todo:
                continue
            if error is not None:
                for cell in todo:
                    yield cell, self._record(ds, image, cell, error=error)
                continue
            try:
                output = self._codec_stage(todo[0], lr)
            except Exception as exc:
                for cell in todo:
                    yield cell, self._record(ds, image, cell,
                                             error=f"codec {cell.codec.name}: {_one_line(exc)}")
                continue
            for cell in todo:
                yield cell, self._score(ds, image, cell, hr_c, lr, output)

    def _codec_stage(self, cell: _Cell, lr: Any) -> Any:
        """Encode + decode once per (codec, quality, image); served from disk if cached."""
        from jcsr_bench.cache import CodecOutput
        from jcsr_bench.devices import timed

        if self.overwrite != "always":
            hit = self.cache.load_codec(cell.codec_key)
            if hit is not None and list(hit.decoded.shape) == list(lr.shape):
                self.codec_hits += 1
                return hit
        codec = self.on_device(cell.codec.obj)
        payload, encode_s = timed(codec.encode, lr, cell.quality, device=self.device)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise PluginError(f"encode returned {type(payload).__name__}, not bytes")
        payload = bytes(payload)
        decoded, decode_s = timed(codec.decode, payload, device=self.device)
        self.codec_runs += 1
        decoded = _check_image(decoded, "the decoded image", lr.shape)
        output = CodecOutput(payload, decoded, encode_s, decode_s)
        self.cache.save_codec(cell.codec_key, output, {
            "codec": cell.codec.name, "codec_identity": cell.codec.obj.identity,
            "quality": cell.quality, "harness": __version__})
        return output

    def _score(self, ds: _Component, image: _Image, cell: _Cell, hr: Any, lr: Any,
               output: Any) -> CellRecord:
        from jcsr_bench.devices import timed
        from jcsr_bench.metrics import compute_metric

        try:
            model = self.on_device(cell.model)
            scale = int(model.scale)
            if scale not in (1, self.scale):
                raise JcsrError(f"SR scale {scale} does not match the run's scale {self.scale}")
            result, sr_s = timed(model.upscale, output.decoded, device=self.device)
            reference = lr if scale == 1 else hr
            result = _check_image(result, f"the output of SR {cell.sr.name}", reference.shape)
        except Exception as exc:
            return self._record(ds, image, cell, error=f"SR {cell.sr.name}: {_one_line(exc)}")
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
        for name, metric, identity in self.metrics:
            metric_keys[name] = identity
            try:
                value = float(compute_metric(metric, reference, result, self.device))
            except NotApplicable as exc:
                values[name], reasons[name] = None, str(exc) or "not applicable"
                continue
            except Exception as exc:
                return self._record(ds, image, cell, error=f"metric {name}: {_one_line(exc)}")
            if math.isnan(value):
                values[name], reasons[name] = None, "the metric returned NaN"
            else:
                values[name] = value
        return self._record(ds, image, cell, values=values, reasons=reasons,
                            metric_keys=metric_keys)

    def _record(self, ds: _Component, image: _Image, cell: _Cell, *, error: str | None = None,
                **fields: Any) -> CellRecord:
        return CellRecord(ds.name, image.name, cell.codec.name, cell.quality, cell.sr.name,
                          image.index, cell.quality_index, cell.cell_key, cell.codec_key,
                          cell.sr_key, image.hash, "error" if error else "ok", error, **fields)


# -- selection -------------------------------------------------------------------------------
def _select(registry: Any, suite: str | None, lists: dict[str, list[str] | None]):
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


def _parse_anchor(anchor: str | None, suite: Any) -> tuple[str, str] | None:
    if anchor:
        from jcsr_bench.report.leaderboard import parse_label

        return parse_label(anchor)
    return tuple(suite.anchor) if suite is not None and suite.anchor else None


def _versions(manager: Any) -> tuple[dict[str, str], dict[str, str]]:
    from jcsr_bench.environment import versions

    plugins = {"jcsr-bench": __version__}
    for info in manager.plugins(include_builtins=False):
        plugins[info.distribution or info.name] = info.version
    return plugins, versions()


# -- entry point ------------------------------------------------------------------------------
def run(
    *,
    registry: Any,
    suite: str | None = None,
    datasets: list[str] | None = None,
    codecs: list[str] | None = None,
    srs: list[str] | None = None,
    qualities: list[Any] | None = None,
    scale: int = 4,
    kernel: str = "matlab",
    limit: int | None = None,
    device: str = "auto",
    output: Path = Path("jcsr-results"),
    overwrite: str = "missing",
    fail_fast: bool = False,
    dry_run: bool = False,
    train: bool = False,
    anchor: str | None = None,
    sr_options: dict[str, Any] | None = None,
    progress: bool | None = None,
    stream: TextIO | None = None,
    cache_root: Path | None = None,
) -> RunSummary:
    """``jcsr-bench run``: evaluate every dataset x codec x quality x SR cell.

    With no suite and no lists the ``default`` suite runs and components whose weights
    are not available are skipped (listed with the remedy); explicitly requested ones
    raise ``WeightsError`` before any compute. ``sr_options`` (``tile``,
    ``tile_overlap``, ``precision``) go to the SR types that declare them. Returns a
    :class:`RunSummary`.
    """
    from jcsr_bench.devices import describe_device, resolve_device

    started = time.perf_counter()
    sr_options = {k: v for k, v in (sr_options or {}).items() if v is not None}
    stream = stream or sys.stdout
    chosen, selected, _ = _select(registry, suite, {"datasets": datasets,
                                                           "codecs": codecs, "sr": srs})
    anchor_pair = _parse_anchor(anchor, chosen)
    resolved = resolve_device(device)
    engine = Engine(registry, scale=scale, kernel=kernel, limit=limit, device=resolved,
                    output=Path(output), overwrite=overwrite, fail_fast=fail_fast,
                    progress=progress, stream=stream, cache_root=cache_root)

    comps: dict[str, list[_Component]] = {}
    for kind, items in selected.items():
        comps[kind] = []
        for name, explicit in items:
            options = {}
            if kind == "sr":  # a type with a `scale` parameter follows the run's scale
                instance = registry.resolve("sr", name)
                options = {k: v for k, v in engine.declared("sr", name, {"scale": scale}).items()
                           if k not in instance.params}
                options.update(engine.declared("sr", name, sr_options))
            obj = engine.build(kind, name, explicit, **options)
            if obj is not None:
                comps[kind].append(_Component(kind, name, obj, explicit))
    comps["codecs"] = [c for c in (_set_qualities(engine, c, qualities, chosen)
                                   for c in comps["codecs"]) if c is not None]
    codec_list, sr_list, left_out = engine.check_weights(comps["codecs"], comps["sr"],
                                                         train=train)
    sr_list = _check_scales(engine, sr_list)
    engine.build_metrics()
    plans = engine.plan(comps["datasets"], codec_list, sr_list, left_out)
    cells = [(p.component.name, img.name, c.codec.name, quality_text(c.quality), c.sr.name)
             for p in plans for img in p.images for cs in img.groups.values() for c in cs]
    pending = sum(len(img.pending()) for p in plans for img in p.images)
    summary = RunSummary(0, engine.output, engine.db_path, cells=len(cells),
                         cached=len(cells) - pending, skipped=engine.skipped, dry_run=dry_run)
    if dry_run:
        _print_plan(engine, plans, summary, stream)
        summary.elapsed_s = time.perf_counter() - started
        return summary

    plugin_versions, versions = _versions(registry.manager)
    meta = {
        "harness_version": __version__,
        "plugin_versions": plugin_versions,
        "versions": versions,
        "datasets": {p.component.name: {"identity": p.component.obj.identity,
                                         "images": len(p.images), "limit": limit}
                     for p in plans},
        "device": describe_device(resolved),
        "date": now_iso(),
        "anchor": "+".join(anchor_pair) if anchor_pair else None,
        "conventions": CONVENTIONS,
        "config": {
            "suite": chosen.name if chosen is not None else None,
            "datasets": [p.component.name for p in plans],
            "codecs": [c.name for c in codec_list],
            "srs": [s.name for s in sr_list],
            "qualities": {c.name: c.qualities for c in codec_list},
            "scale": scale, "kernel": kernel, "limit": limit, "overwrite": overwrite,
            "metrics": [name for name, _, _ in engine.metrics],
        },
        "components": {
            "codecs": {c.name: c.obj.identity for c in codec_list},
            "metrics": {name: identity for name, _, identity in engine.metrics},
        },
        "skipped": [s.__dict__ for s in engine.skipped],
    }
    stopped = False
    with Store(engine.db_path) as store:
        run_id = store.begin_run(meta)
        status = "interrupted"
        try:
            summary.computed, stopped = engine.execute(plans, store, run_id)
            status = "stopped (fail-fast)" if stopped else "finished"
        finally:
            store.end_run(run_id, status, {"computed": summary.computed,
                                           "codec_runs": engine.codec_runs})
        states = {(r["dataset"], r["image"], r["codec"], quality_text(r["quality"]), r["sr"]): r
                  for r in store.rows(cells)}
    summary.codec_runs, summary.codec_cache_hits = engine.codec_runs, engine.codec_hits
    summary.failed = [Failure(r["dataset"], r["image"], r["codec"], r["quality"], r["sr"],
                              r["error"] or "") for r in states.values() if r["status"] != "ok"]
    fingerprint = digest({"cells": sorted((k, r["cell_key"], r["status"])
                                          for k, r in states.items()),
                          "anchor": anchor_pair, "harness": __version__})
    summary.files = _write_outputs(engine.output, engine.db_path, cells, anchor_pair, stream,
                                   fingerprint)
    summary.exit_code = 1 if summary.failed or stopped else 0
    summary.elapsed_s = time.perf_counter() - started
    _print_summary(engine.output, cells, summary, stream, stopped)
    return summary


def _set_qualities(engine: Engine, codec: _Component, qualities: list[Any] | None,
                   suite: Any) -> _Component | None:
    """The codec's rate points: --qualities, else the suite's, else its ladder.

    Qualities outside the instance's ladder rebuild it with ``qualities=`` (when its type
    takes that parameter), so a subset of the ladder keeps the codec's identity.
    """
    requested = qualities or (suite.qualities.get(codec.name) if suite is not None else None)
    ladder = list(codec.obj.qualities)
    if not requested:
        codec.qualities = ladder
        return codec
    requested = list(requested)
    if all(q in ladder for q in requested):
        codec.qualities = requested
        return codec
    instance = engine.registry.resolve("codecs", codec.name)
    schema = engine.registry.manager.get("codecs", instance.type).params or {}
    if "qualities" not in schema:
        reason = (f"qualities {[q for q in requested if q not in ladder]} are not in its "
                  f"ladder {ladder}")
        if codec.explicit:
            raise JcsrError(f"codec {codec.name}: {reason}")
        engine.skipped.append(Skipped("codec", codec.name, reason))
        return None
    obj = engine.build("codecs", codec.name, codec.explicit, qualities=requested)
    if obj is None:
        return None
    codec.obj, codec.qualities = obj, requested
    return codec


def _check_scales(engine: Engine, srs: list[_Component]) -> list[_Component]:
    """SR models must upscale by the run's scale, or be scale-1 (codec-only, ``none``)."""
    kept = []
    for sr in srs:
        try:
            scale, error = int(sr.obj.scale), ""
        except Exception as exc:
            scale, error = -1, _one_line(exc)
        if scale in (1, engine.scale):
            kept.append(sr)
            continue
        reason = error or (f"it upscales x{scale} but the run's scale is {engine.scale} "
                           "(use --scale to match, or --sr none for codec-only)")
        if sr.explicit:
            raise JcsrError(f"SR {sr.name}: {reason}")
        engine.skipped.append(Skipped("sr", sr.name, reason))
    return kept


def _write_outputs(output: Path, db_path: Path, cells: list, anchor: tuple[str, str] | None,
                   stream: TextIO, fingerprint: str) -> list[Path]:
    """Exports (JSON per combination, CSV), the leaderboard and RD plots.

    Skipped when the outputs on disk were written from exactly these stored cells
    (``outputs.json`` fingerprint), so a re-run of a finished matrix stays cheap.
    """
    import json

    record = output / "outputs.json"
    try:
        previous = json.loads(record.read_text())
        files = [output / f for f in previous["files"]]
        if previous["fingerprint"] == fingerprint and all(f.is_file() for f in files):
            return files
    except (OSError, ValueError, KeyError, TypeError):
        pass
    files = _render_outputs(output, db_path, cells, anchor, stream)
    record.write_text(json.dumps({"fingerprint": fingerprint, "files": [
        str(f.relative_to(output)) for f in files]}, indent=1))
    return files


def _render_outputs(output: Path, db_path: Path, cells: list, anchor: tuple[str, str] | None,
                    stream: TextIO) -> list[Path]:
    from jcsr_bench.exports import write_compressai_json, write_csv
    from jcsr_bench.store import curves_from_rows, load_rows

    with Store(db_path, readonly=True) as store:
        meta = store.meta()
    rows = load_rows(db_path, cells=cells)
    curves = curves_from_rows(rows, meta)
    files = [write_csv(rows, output / "results.csv")]
    files += write_compressai_json(curves, output / "json", f"jcsr-bench {__version__}")
    if not curves:
        return files
    labels = {c.label for c in curves}
    if anchor is not None and f"{anchor[0]}+{anchor[1]}" not in labels:
        print(f"note: anchor {anchor[0]}+{anchor[1]} is not in this run's results; the "
              "leaderboard uses the first combination", file=stream)
        anchor = None
    try:
        from jcsr_bench.report.leaderboard import render_leaderboard

        text = render_leaderboard(curves, meta, anchor=anchor)
        path = output / "leaderboard.md"
        path.write_text(text)
        files.append(path)
    except JcsrError as exc:
        print(f"note: no leaderboard: {exc}", file=stream)
    try:
        from jcsr_bench.report.plots import plot_rd

        files += plot_rd(curves, output / "plots", anchor=anchor)
    except JcsrError as exc:
        print(f"note: no RD plots: {exc}", file=stream)
    return files


def _fmt_range(values: list[float | None], fmt: str) -> str:
    got = [v for v in values if v is not None and math.isfinite(v)]
    if not got:
        return "n/a"
    lo, hi = min(got), max(got)
    return format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"


def _print_summary(output: Path, cells: list, summary: RunSummary, stream: TextIO,
                   stopped: bool) -> None:
    from tabulate import tabulate

    from jcsr_bench.store import load_curves

    curves, _ = load_curves(summary.db_path, cells=cells)
    rows = []
    for c in curves:
        col = {m: [p.values.get(m) for p in c.points] for m in ("bpp", "psnr-rgb",
                                                             "ms-ssim-rgb", "sr_s")}
        rows.append([c.dataset, c.label, len(c.points), max((p.images for p in c.points),
                                                            default=0),
                     _fmt_range(col["bpp"], ".4f"), _fmt_range(col["psnr-rgb"], ".2f"),
                     _fmt_range(col["ms-ssim-rgb"], ".4f")])
    if rows:
        print(tabulate(rows, headers=["dataset", "codec+sr", "points", "images", "bpp",
                                      "psnr-rgb (dB)", "ms-ssim-rgb"]), file=stream)
    if summary.skipped:
        print("\nskipped (not evaluated):", file=stream)
        grouped: dict[tuple[str, str], list[str]] = {}
        for s in summary.skipped:
            grouped.setdefault((s.kind, s.name), []).append(s.reason)
        for (kind, name), reasons in grouped.items():
            if len(reasons) == 1:
                print(f"  {kind} {name}: {reasons[0]}", file=stream)
                continue
            print(f"  {kind} {name}:", file=stream)
            for reason in reasons:
                print(f"    - {reason}", file=stream)
    if summary.failed:
        print(f"\nfailed cells ({len(summary.failed)}):", file=stream)
        for f in summary.failed[:20]:
            print(f"  {f.dataset}/{f.image} {f.codec} q={f.quality} {f.sr}: {f.error}",
                  file=stream)
        if len(summary.failed) > 20:
            print(f"  ... and {len(summary.failed) - 20} more (see results.csv)", file=stream)
    print(f"\n{summary.cells} cells: {summary.computed} computed, {summary.cached} already "
          f"stored, {len(summary.failed)} failed; codec runs {summary.codec_runs} "
          f"(+{summary.codec_cache_hits} from cache); {summary.elapsed_s:.1f} s"
          + ("; stopped at the first failure (--fail-fast)" if stopped else ""), file=stream)
    print(f"results: {output}", file=stream)


def _print_plan(engine: Engine, plans: list[_DatasetPlan], summary: RunSummary,
                stream: TextIO) -> None:
    from tabulate import tabulate

    rows: dict[tuple[str, str, str], list[int]] = {}
    stages = cached_stages = 0
    for plan in plans:
        for image in plan.images:
            for cells in image.groups.values():
                for cell in cells:
                    row = rows.setdefault((plan.component.name, cell.codec.name, cell.sr.name),
                                          [0, 0, 0])
                    row[0] += 1
                    row[1 if cell.compute else 2] += 1
                if any(c.compute for c in cells):
                    stages += 1
                    if engine.overwrite != "always" and \
                            (engine.cache.entry(cells[0].codec_key) / "meta.json").is_file():
                        cached_stages += 1
    table = [[d, f"{c}+{s}", n, todo, done] for (d, c, s), (n, todo, done) in rows.items()]
    print(tabulate(table, headers=["dataset", "codec+sr", "cells", "to compute", "stored"]),
          file=stream)
    for s in summary.skipped:
        print(f"skipped {s.kind} {s.name}: {s.reason}", file=stream)
    print(f"\nplan: {summary.cells} cells, {summary.cells - summary.cached} to compute, "
          f"{summary.cached} already stored; codec runs needed: {stages - cached_stages} "
          f"(+{cached_stages} in the disk cache); scale {engine.scale}, kernel "
          f"{engine.kernel}, device {engine.device}; output {engine.output} (dry run: "
          "nothing computed)", file=stream)


__all__ = ["Failure", "RunSummary", "Skipped", "pixel_hash", "run"]
