"""``jcsr-bench reproduce``: the paper's baseline-2-over-baseline-1 experiment, and
baseline 3 (joint decoding) beside it for a codec that offers its latent.

The protocol, at every budget: B1 is an RRDBNet trained (or, at the full budget,
published) on clean bicubic LR; B2 is B1 fine-tuned on the codec's decoded LR, one
model per codec quality (whole images compressed, aligned crops -- the training
module's pairs). Bicubic, B1 and B2 are then evaluated on held-out images across the
codec's qualities, and the paper-style table (BD-Rate PSNR, BD-PSNR, BD-Rate MS-SSIM,
BD-MS-SSIM) of B2 vs B1 and of B1 vs bicubic is written with an RD plot.

The ``small`` budget runs offline on a CPU in minutes: ``samples-train`` /
``samples-test`` (disjoint scikit-image photos), a compact RRDBNet learning a residual
over bicubic, PSNR-oriented L1 training (no VGG19 or discriminator, whose weights cannot
be downloaded offline), JPEG, several seeds. ``full`` is the paper's setting: the
published ESRGAN as B1, ``esrgan-b2`` fine-tuned on DF2K through bmshj2018-hyperprior
q1-8, evaluated on DIV2K valid.

A learned codec named in :data:`jcsr_bench.experiments.learned_codec.LEARNED_CODECS`
(``bmshj-samples``) is trained first, by ``train-codec``'s code, on the budget's training
split (the budget's ``codec_training`` recipe), registered under that name, and then used
exactly as JPEG is; its table adds the codec-only standing against JPEG on the test split.

For a codec offering its latent (a learned codec), each seed's B2 is the start of a B3
(``jcsr_bench.training.joint``: the codec's synthesis transform and the SR network
fine-tuned together from the latent, same payloads), and the table adds B3 vs B2 and
B3 vs B1; for JPEG it says that B3 does not apply.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jcsr_bench.components import offers_latent
from jcsr_bench.experiments.learned_codec import (
    CodecRecipe,
    TrainedCodec,
    is_learned,
    train_learned_codec,
)
from jcsr_bench.kit.atomic import atomic_write
from jcsr_bench.kit.devices import describe_device, resolve_device
from jcsr_bench.kit.environment import fingerprint
from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.identity import canonical_json, digest, safe_filename
from jcsr_bench.kit.paths import cache_dir
from jcsr_bench.kit.version import __version__
from jcsr_bench.results.curves import Curve
from jcsr_bench.results.store import load_curves
from jcsr_bench.training.config import resolve_config

PAPER = (
    ("paper, DIV2K valid (ESRGAN, bmshj q1-8)", "-23.33", "+0.44", "-12.98"),
    ("paper, JPEG AI test (ESRGAN, bmshj q1-8)", "-20.23", "+0.34", "-11.24"),
)
COLUMNS = (("BD-Rate PSNR (%)", "rate", "psnr-rgb"), ("BD-PSNR (dB)", "quality", "psnr-rgb"),
           ("BD-Rate MS-SSIM (%)", "rate", "ms-ssim-rgb"),
           ("BD-MS-SSIM (dB)", "quality", "ms-ssim-rgb"))
#: The metrics the table and the RD plots use: the evaluation scores these only (the
#: registry's other metrics -- LPIPS, DISTS, VMAF, ... -- would multiply its time).
METRICS = sorted({metric for _, _, metric in COLUMNS})


@dataclass(frozen=True)
class Budget:
    """Everything a budget fixes. ``b1``/``b2`` are ``adapt`` sections (training.config)."""

    name: str
    train: str
    test: str
    seeds: int
    qualities: dict[str, list[Any]]  # codec instance -> qualities ("*": the default)
    arch: dict[str, Any] | None = None  # None: B1 is the registry's published esrgan-b1
    b1: dict[str, Any] = field(default_factory=dict)
    b2: dict[str, Any] = field(default_factory=dict)
    test_limit: int | None = None
    codec_training: CodecRecipe | None = None  # how a learned codec is trained first
    b3: dict[str, Any] = field(default_factory=dict)  # joint decoding (latent codecs only)


TOY_CODEC_STEPS, SMALL_CODEC_STEPS = 30, 700
L1_ONLY = {"preset": "cpu", "perceptual_weight": 0.0, "gan_weight": 0.0, "ema": 0.0,
           "augment": True, "batch": 8, "patch": 64, "images": None}
# Joint decoding trains on latent crops, never flipped; HR patch 64 = one latent pixel
# (plus the synthesised margin) at x4 and the codec's 16x stride.
JOINT_L1 = {k: v for k, v in L1_ONLY.items() if k != "augment"}

BUDGETS: dict[str, Budget] = {
    "toy": Budget(
        "toy", "samples-train", "samples-test", seeds=1,
        qualities={"jpeg": [20, 60], "bmshj-samples": [1, 8], "*": None},
        arch={"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "skip": "bicubic"},
        b1={**L1_ONLY, "steps": 4, "l1_steps": 4, "batch": 2, "patch": 32, "images": 1,
            "checkpoint_every": 2, "log_every": 2},
        b2={**L1_ONLY, "steps": 2, "l1_steps": 2, "batch": 2, "patch": 32, "images": 1,
            "checkpoint_every": 2, "log_every": 2},
        b3={**JOINT_L1, "steps": 2, "l1_steps": 2, "batch": 2, "patch": 64, "images": 1,
            "checkpoint_every": 2, "log_every": 2},
        test_limit=1,
        codec_training=CodecRecipe(steps=TOY_CODEC_STEPS, batch=2, patch=64, lr=1e-2,
                                   channels=(8, 12), images=1, checkpoint_every=10,
                                   warm_start=True),
    ),
    "small": Budget(
        "small", "samples-train", "samples-test", seeds=3,
        qualities={"jpeg": [10, 20, 30, 50, 75], "bmshj": [1, 3, 5, 8],
                   "bmshj-samples": [1, 3, 5, 8], "*": None},
        arch={"num_feat": 32, "num_block": 4, "num_grow_ch": 16, "skip": "bicubic"},
        b1={**L1_ONLY, "steps": 1500, "l1_steps": 1500, "l1_lr": 2e-4,
            "checkpoint_every": 500, "log_every": 50},
        b2={**L1_ONLY, "steps": 300, "l1_steps": 300, "l1_lr": 1e-4,
            "checkpoint_every": 300, "log_every": 50},
        b3={**JOINT_L1, "steps": 150, "l1_steps": 150, "l1_lr": 1e-4,
            "checkpoint_every": 150, "log_every": 50},
        # Lowest rate first, each quality warm-started from the one below, the learning
        # rate x0.1 for the last quarter of each: this short training is training-limited
        # (a higher-rate model trained no longer than a lower one decodes no better), so
        # each higher rate gets more training in all and ends settled at the low rate.
        codec_training=CodecRecipe(steps=SMALL_CODEC_STEPS, batch=8, patch=64, lr=1e-3,
                                   channels=(64, 96), checkpoint_every=100,
                                   warm_start=True, lr_drop=0.75),
    ),
    "full": Budget(
        "full", "df2k", "div2k-valid", seeds=1,
        qualities={"bmshj-samples": [1, 3, 5, 8], "*": None},
        b2={"preset": "esrgan"},
        b3={"preset": "esrgan"},
        codec_training=CodecRecipe(steps=200_000, batch=16, patch=96, lr=1e-4,
                                   checkpoint_every=5_000),
    ),
}


#: When a rerun gives the same numbers, stated in every table.
REPEAT_CONDITION = (
    "The same seeds give bit-identical numbers only in the same environment fingerprint "
    "(CPU model, ISA level, torch threads, device and versions, below): torch and its math "
    "libraries pick kernels, and so floating-point rounding, by CPU, ISA level and thread "
    "count. Elsewhere training takes another path and the numbers move, within about the "
    "spread over seeds."
)


@dataclass
class Comparison:
    """One table row: ``test`` against ``anchor``, a value per seed and column."""

    test: str
    anchor: str
    per_seed: list[dict[str, float | str]] = field(default_factory=list)


@dataclass
class ReproduceResult:
    table: Path
    plots: list[Path]
    comparisons: list[Comparison]
    seconds: float


def _qualities(budget: Budget, codec_name: str, registry: Any) -> list[Any]:
    chosen = budget.qualities.get(codec_name, budget.qualities.get("*"))
    return list(chosen) if chosen else list(registry.build("codecs", codec_name).qualities)


def _yaml_entry(name: str, fields: dict[str, Any]) -> str:
    # JSON is valid YAML: the generated registry needs no YAML writer.
    return f"  {name}: {canonical_json(fields)}\n"


def _add_registry(registry: Any, path: Path, entries: dict[str, dict[str, Any]],
                  kind: str = "sr") -> None:
    atomic_write(path, f"{kind}:\n" + "".join(_yaml_entry(n, f) for n, f in entries.items()))
    registry.add_file(path)


def _b2_for(registry: Any, name: str, dataset: str, seed: int, work: Path) -> str:
    """``name`` when its adapt section trains on ``dataset`` with ``seed``, else a
    registered copy that does: the evaluated instance must be the trained one, since the
    trained-weights store is keyed by the effective configuration."""
    instance = registry.resolve("sr", name)
    adapt = dict(instance.params.get("adapt") or {})
    config = resolve_config(adapt)
    if (config["dataset"], config["seed"]) == (dataset, seed):
        return name
    copy = f"{name}-{safe_filename(dataset)}-seed{seed}"
    _add_registry(registry, work / f"registry-{copy}.yaml", {copy: {
        **instance.params, "type": instance.type,
        "adapt": {**adapt, "dataset": dataset, "seed": seed}}})
    return copy


def _train_models(registry: Any, budget: Budget, codec: str, qualities: list[Any],
                  seeds: Sequence[int], work: Path, device: str, progress: bool,
                  log: Callable[..., Any]) -> tuple[dict[int, tuple[str, str]], list[Any]]:
    """Train B1 (clean LR) and B2 (decoded LR, per quality) for each seed; return the
    SR instance names ``{seed: (b1, b2)}`` and every ``TrainResult``."""
    from jcsr_bench.training.sr import train_sr

    names: dict[int, tuple[str, str]] = {}
    results: list[Any] = []
    for seed in seeds:
        if budget.arch is None:  # full budget: the published B1 and the registry's B2
            b2 = _b2_for(registry, "esrgan-b2", budget.train, seed, work)
            names[seed] = ("esrgan-b1", b2)
            log(f"training {b2} for {codec} at {qualities} on {budget.train}")
            results += train_sr(registry, b2, codec, None, qualities, device=device,
                                only_missing=True, progress=progress, log=log)
            continue
        b1_adapt = {**budget.b1, "dataset": budget.train, "seed": seed}
        # The names carry the B1 recipe's hash, so each seed and recipe has its own
        # registry entries (B2's store key follows B1's weights by content anyway).
        tag = digest({"arch": budget.arch, "b1": b1_adapt}, 8)
        b1_train, b1, b2 = f"repro-b1-train-{tag}", f"repro-b1-{tag}", f"repro-b2-{tag}"
        _add_registry(registry, work / f"registry-b1-{tag}.yaml",
                      {b1_train: {"type": "esrgan", "arch": budget.arch, "adapt": b1_adapt}})
        log(f"seed {seed}: training B1 on clean LR of {budget.train}")
        (b1_result,) = train_sr(registry, b1_train, "png", budget.train, [6], device=device,
                                only_missing=True, progress=progress, log=log)
        results.append(b1_result)
        _stop_if_interrupted(results)  # B2 starts from B1's finished weights
        b2_adapt = {**budget.b2, "init": b1, "dataset": budget.train, "seed": seed}
        _add_registry(registry, work / f"registry-b2-{tag}.yaml", {
            b1: {"type": "esrgan", "weights": str(b1_result.checkpoint)},
            b2: {"type": "esrgan", "arch": budget.arch, "adapt": b2_adapt},
        })
        log(f"seed {seed}: fine-tuning B2 on {codec} at qualities {qualities}")
        results += train_sr(registry, b2, codec, budget.train, qualities, device=device,
                            only_missing=True, progress=progress, log=log)
        names[seed] = (b1, b2)
    _stop_if_interrupted(results)
    return names, results


def _train_joint(registry: Any, budget: Budget, codec: str, qualities: list[Any],
                 names: dict[int, tuple[str, str]], work: Path, device: str, progress: bool,
                 log: Callable[..., Any]) -> tuple[dict[int, str], list[Any]]:
    """Train B3 (joint decoding, from each seed's B2) for a codec offering its latent;
    return ``{seed: b3 instance}`` and the ``TrainResult``s."""
    from jcsr_bench.training.joint import train_joint

    b3_names: dict[int, str] = {}
    results: list[Any] = []
    for seed, (_b1, b2) in sorted(names.items()):
        if budget.arch is None:  # full budget: the registry's esrgan-b3 from this B2
            instance = registry.resolve("sr", "esrgan-b3")
            adapt = {**instance.params["adapt"], **budget.b3, "init": b2,
                     "dataset": budget.train, "seed": seed}
            entry = {**instance.params, "type": instance.type, "adapt": adapt}
            same = resolve_config(adapt) == resolve_config(instance.params["adapt"])
            b3 = "esrgan-b3" if same else f"esrgan-b3-{safe_filename(budget.train)}-seed{seed}"
        else:
            adapt = {**budget.b3, "joint": "synthesis", "init": b2, "dataset": budget.train,
                     "seed": seed}
            entry = {"type": "esrgan", "arch": budget.arch, "adapt": adapt}
            b3 = f"repro-b3-{digest({'b2': b2, 'b3': adapt}, 8)}"
        if b3 != "esrgan-b3":
            _add_registry(registry, work / f"registry-{b3}.yaml", {b3: entry})
        log(f"seed {seed}: fine-tuning B3 (joint decoding: {codec}'s synthesis + SR from "
            f"the latent) at qualities {qualities}")
        results += train_joint(registry, b3, codec, None, qualities, device=device,
                            only_missing=True, progress=progress, log=log)
        b3_names[seed] = b3
    _stop_if_interrupted(results)
    return b3_names, results


def _stop_if_interrupted(results: list[Any]) -> None:
    interrupted = [r for r in results if r.status == "interrupted"]
    if interrupted:
        raise JcsrError(f"training was interrupted ({interrupted[0].checkpoint}); run the "
                        "same command again to resume it")


def _bd(anchor: Curve, test: Curve, kind: str, metric: str, method: str) -> float | str:
    from jcsr_bench.results import bd

    def series(curve: Curve) -> tuple[list[float], list[float]]:
        rates, quality = curve.series("bpp", metric)
        if metric == "ms-ssim-rgb":
            quality = [bd.msssim_db(q) for q in quality]
        return rates, quality

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.BDOverlapWarning)
            fn = bd.bd_rate if kind == "rate" else bd.bd_quality
            return fn(*series(anchor), *series(test), method=method)
    except JcsrError as exc:
        return f"n/a ({exc})"


def _compare(curves: dict[str, Curve], names: dict[int, tuple[str, str]],
             method: str, b3_names: dict[int, str] | None = None) -> list[Comparison]:
    comparisons = [Comparison("B2", "B1"), Comparison("B1", "bicubic"),
                   Comparison("B2", "bicubic")]
    if b3_names:
        comparisons += [Comparison("B3", "B2"), Comparison("B3", "B1")]
    for seed, (b1, b2) in sorted(names.items()):
        sr = {"B1": b1, "B2": b2, "bicubic": "bicubic", "B3": (b3_names or {}).get(seed)}
        for comparison in comparisons:
            comparison.per_seed.append({
                title: _bd(curves[sr[comparison.anchor]], curves[sr[comparison.test]], kind,
                           metric, method)
                for title, kind, metric in COLUMNS
            })
    return comparisons


def _summary(values: list[float | str], unit_digits: int) -> str:
    numbers = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    if not numbers:
        reasons = sorted({str(v) for v in values})
        return reasons[0] if reasons else "n/a"
    mean = statistics.fmean(numbers)
    text = f"{mean:+.{unit_digits}f}"
    if len(numbers) > 1:
        text += f" ± {statistics.stdev(numbers):.{unit_digits}f}"
    if len(numbers) < len(values):
        text += f" ({len(numbers)}/{len(values)} seeds defined)"
    return text


def _fmt(value: float | str, digits: int) -> str:
    return f"{value:+.{digits}f}" if isinstance(value, float) else value


def _model_size(arch: dict[str, Any] | None) -> str:
    from jcsr_bench.archs.rrdbnet import DEFAULT_ARCH, RRDBNet

    full = {**DEFAULT_ARCH, **(arch or {})}
    params = sum(p.numel() for p in RRDBNet(**full).parameters())
    shape = (f"{full['num_block']} blocks, {full['num_feat']} features, growth "
             f"{full['num_grow_ch']}" + (", bicubic skip" if full.get("skip") else ""))
    return f"RRDBNet x{full['scale']} ({shape}; {params:,} parameters)"


def describe_environment(environment: dict[str, Any]) -> str:
    """A fingerprint (``jcsr_bench.kit.environment.fingerprint``) as one Markdown line."""
    versions = ", ".join(f"{name} {version}" for name, version in
                         environment.get("versions", {}).items())
    return (f"CPU {environment.get('cpu', '?')}, ISA level {environment.get('isa', '?')} "
            f"({environment.get('machine', '?')}), {environment.get('threads', '?')} torch "
            f"threads, device {environment.get('device', '?')}; {versions}")


def render_table(*, budget: Budget, codec: str, qualities: list[Any],
                 comparisons: list[Comparison], seeds: Sequence[int], model: str,
                 method: str, seconds: float, device: str, test_images: int,
                 train_images: str, trained_here: int, trained_total: int,
                 environment: dict[str, Any], joint: str = "", timing: str = "") -> str:
    """The paper-style Markdown table with the full statement of the setting, including
    the environment fingerprint within which the numbers repeat exactly."""
    from tabulate import tabulate

    digits = {"BD-Rate PSNR (%)": 2, "BD-PSNR (dB)": 3, "BD-Rate MS-SSIM (%)": 2,
              "BD-MS-SSIM (dB)": 3}
    headers = ["Comparison", *(title for title, _, _ in COLUMNS)]
    rows = [[f"{c.test} vs {c.anchor} (mean ± std over {len(seeds)} seed(s))",
             *(_summary([s[t] for s in c.per_seed], digits[t]) for t, _, _ in COLUMNS)]
            for c in comparisons]
    rows += [[label, rate, psnr, msssim, "not reported"] for label, rate, psnr, msssim in PAPER]
    seed_rows = [[seed, f"{c.test} vs {c.anchor}",
                  *(_fmt(values[t], digits[t]) for t, _, _ in COLUMNS)]
                 for c in comparisons for seed, values in zip(seeds, c.per_seed)]
    steps = ("published ESRGAN (B1); esrgan-b2 recipe (B2)" if budget.arch is None else
             f"B1 {budget.b1['steps']} steps, B2 {budget.b2['steps']} steps per quality "
             f"(L1 only, batch {budget.b1['batch']}, HR patch {budget.b1['patch']})")
    lines = [
        f"# Baseline 2 over baseline 1: `{codec}`, {budget.name} budget",
        "",
        f"Regenerate: `jcsr-bench reproduce --codec {codec} --budget {budget.name} "
        f"--seeds {len(seeds)}`. {REPEAT_CONDITION}",
        "",
        f"- Environment fingerprint: {describe_environment(environment)}.",
        f"- Data: train on `{budget.train}` ({train_images}); evaluate on `{budget.test}` "
        f"({test_images} images), disjoint.",
        f"- Codec: `{codec}` at qualities {qualities}; SR x4, LR by MATLAB bicubic.",
        f"- Models: {model}; B1 trained on clean bicubic LR, B2 = B1 fine-tuned on the "
        "codec's decoded LR, one model per quality.",
        f"- Training: {steps}.",
        *([f"- {joint}"] if joint else []),
        f"- Seeds: {', '.join(str(s) for s in seeds)}; mean ± sample standard deviation.",
        f"- BD method: {method} on log10(bpp), bpp = bits / HR pixels; MS-SSIM in dB "
        "(-10·log10(1 - MS-SSIM)); negative BD-rate = the first model needs fewer bits.",
        f"- Time taken: {seconds / 60:.1f} min on {device}, training {trained_here} of the "
        f"{trained_total} models in that time (the rest came from the trained-weights "
        f"store); jcsr-bench {__version__}.{timing}",
        "",
        tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True),
        "",
        "## Per seed",
        "",
        tabulate(seed_rows, headers=["Seed", "Comparison", *headers[1:]], tablefmt="pipe",
                 disable_numparse=True),
        "",
    ]
    return "\n".join(lines)


def _seed_times(seed_seconds: dict[int, float], once_seconds: float, joint: bool,
                from_scratch: bool) -> str:
    """Each seed's measured time, and -- when this run trained every model -- what one seed
    costs from scratch: its own time plus what a run pays once (the learned codec's
    training and its codec-only standing)."""
    if not seed_seconds:
        return ""
    parts = ", ".join(f"seed {seed} {sec / 60:.1f} min" for seed, sec in seed_seconds.items())
    text = (f" Per seed (its B1, B2{', B3' if joint else ''} training and evaluation): "
            f"{parts}.")
    if not from_scratch:
        return text + (" Models came from the trained-weights store, so these are not "
                       "from-scratch times.")
    if once_seconds:
        first, first_seconds = next(iter(seed_seconds.items()))
        text += (f" Paid once per run (the learned codec's training and codec-only "
                 f"evaluation): {once_seconds / 60:.1f} min; so one seed from scratch "
                 f"(seed {first}) took {(once_seconds + first_seconds) / 60:.1f} min.")
    return text


def reproduce(
    registry: Any,
    *,
    codec: str = "jpeg",
    budget: str = "small",
    seeds: int | None = None,
    device: str = "auto",
    output: Path = Path("leaderboards"),
    method: str = "pchip",
    work: Path | None = None,
    progress: bool = True,
    log: Callable[..., Any] = print,
) -> ReproduceResult:
    """Train what is missing, evaluate bicubic / B1 / B2 (/ B3), write the table and RD plot."""
    from jcsr_bench.report.plots import plot_rd
    from jcsr_bench.run import engine

    if budget not in BUDGETS:
        raise JcsrError(f"unknown budget {budget!r}; choose from {', '.join(BUDGETS)}")
    spec = BUDGETS[budget]
    started = time.perf_counter()
    seed_list = list(range(seeds if seeds is not None else spec.seeds))
    if not seed_list:
        raise JcsrError("--seeds must be at least 1")
    qualities = _qualities(spec, codec, registry)
    work = work or cache_dir() / "reproduce" / f"{codec}-{budget}"
    learned = _learned_codec(registry, spec, codec, qualities, work, device, progress, log)
    joint = offers_latent(registry.build("codecs", codec))
    names: dict[int, tuple[str, str]] = {}
    b3_names: dict[int, str] = {}
    trained: list[Any] = []
    seed_seconds: dict[int, float] = {}
    for seed in seed_list:
        # One seed at a time, trained and evaluated, so each seed's time is measured
        # (the table states what one seed costs from scratch).
        seed_started = time.perf_counter()
        seed_names, seed_trained = _train_models(registry, spec, codec, qualities, [seed],
                                                 work, device, progress, log)
        names.update(seed_names)
        trained += seed_trained
        seed_b3: dict[int, str] = {}
        if joint:
            seed_b3, joint_trained = _train_joint(registry, spec, codec, qualities,
                                                  seed_names, work, device, progress, log)
            b3_names.update(seed_b3)
            trained += joint_trained
        srs = ["bicubic", *dict.fromkeys(seed_names[seed]), *seed_b3.values()]
        # The same output folder: bicubic's cells, computed for the first seed, are re-used.
        summary = engine.run(registry=registry, datasets=[spec.test], codecs=[codec],
                             srs=srs, qualities=qualities, limit=spec.test_limit,
                             metrics=METRICS, device=device, output=work / "run",
                             progress=progress)
        if summary.exit_code:
            raise JcsrError(f"the evaluation had failing cells; see {summary.output}")
        seed_seconds[seed] = time.perf_counter() - seed_started
    curves, meta = load_curves(summary.db_path)
    standing_started = time.perf_counter()
    standing = (None if learned is None else
                _codec_standing(registry, spec, codec, qualities, work, device, progress,
                                method))
    standing_seconds = time.perf_counter() - standing_started
    by_sr = {c.sr: c for c in curves if c.codec == codec and c.dataset == spec.test}
    comparisons = _compare(by_sr, names, method, b3_names)
    b1_first, b2_first = names[seed_list[0]]
    out_dir = Path(output) / f"reproduce-{codec}-{budget}"
    labels = {"bicubic": "bicubic", b1_first: "B1", b2_first: "B2"}
    if b3_names:
        labels[b3_names[seed_list[0]]] = "B3"
    plots = plot_rd([replace(by_sr[sr], sr=label) for sr, label in labels.items()], out_dir,
                    anchor=(codec, "B1"))
    seconds = time.perf_counter() - started
    table = out_dir / "table.md"
    train_dataset = registry.build("datasets", spec.train)
    train_images = ", ".join(getattr(train_dataset, "names", [])[: spec.b1.get("images") or None])
    atomic_write(table, render_table(
        budget=spec, codec=codec, qualities=qualities, comparisons=comparisons,
        seeds=seed_list, model=_model_size(spec.arch), method=method,
        seconds=seconds, device=describe_device(resolve_device(device)),
        test_images=meta["datasets"].get(spec.test, {}).get("images", 0),
        train_images=train_images or spec.train,
        trained_here=sum(r.status == "done" for r in trained), trained_total=len(trained),
        environment=fingerprint(describe_device(resolve_device(device))),
        joint=_joint_line(spec, codec, bool(b3_names)),
        timing=_seed_times(
            seed_seconds, 0.0 if learned is None else learned.seconds + standing_seconds,
            bool(b3_names), from_scratch=all(r.status == "done" for r in trained) and (
                learned is None or learned.trained_here == len(learned.weights))),
    ) + ("" if learned is None or standing is None else
         render_standing(learned, standing, spec.test))
      + f"\nRD plots (seed {seed_list[0]}): "
        + ", ".join(f"[{p.name}]({p.name})" for p in plots if p.suffix == ".png") + "\n")
    log(f"wrote {table}")
    return ReproduceResult(table, plots, comparisons, seconds)


def _joint_line(budget: Budget, codec: str, trained: bool) -> str:
    """What the table says about baseline 3 (joint decoding)."""
    if not trained:
        return (f"Baseline 3 (joint decoding) does not apply: codec `{codec}` offers no "
                "latent (decode_latent / synthesize), so there is no synthesis transform to "
                "fine-tune.")
    steps = ("the esrgan-b3 recipe" if budget.arch is None else
             f"{budget.b3['steps']} steps per quality (L1 only, batch {budget.b3['batch']}, "
             f"HR patch {budget.b3['patch']}, latent crops, no flips)")
    return (f"Baseline 3 (joint decoding): `{codec}`'s synthesis transform and B2's SR "
            "network fine-tuned together from the decoded latent, one pair per quality, "
            f"same bits as B2 (the codec's own payloads); {steps}.")


def _learned_codec(registry: Any, budget: Budget, codec: str, qualities: list[Any],
                   work: Path, device: str, progress: bool,
                   log: Callable[..., Any]) -> TrainedCodec | None:
    """Train a learned codec first (re-used from the store when there) and register it
    under ``codec``; ``None`` for a codec the registry already has."""
    if not is_learned(codec):
        return None
    if budget.codec_training is None:
        raise JcsrError(f"the {budget.name} budget has no recipe to train {codec}")
    learned = train_learned_codec(registry, codec, budget.codec_training, budget.train,
                                  [int(q) for q in qualities], device=device,
                                  progress=progress, log=log)
    path = work / f"registry-{safe_filename(codec)}.yaml"
    _add_registry(registry, path, {codec: learned.registry_entry()}, kind="codecs")
    log(f"{codec} is registered in {path}; evaluate with it (baseline 3 too) by `jcsr-bench "
        f"run --registry {path} --codec {codec} --sr esrgan-b2-cpu,esrgan-b3-cpu --train`")
    return learned


@dataclass
class Standing:
    """The codec against JPEG on the test split: alone (``--sr none``), and after the same
    fixed bicubic x4 at HR, where MS-SSIM is defined even when the LR images are too small
    for its five scales."""

    curves: dict[str, Curve]  # codec name -> its codec-only curve
    bd: dict[str, float | str]  # COLUMNS title -> the codec vs JPEG, codec only
    bicubic_bd: dict[str, float | str]  # COLUMNS title -> the same after bicubic x4, at HR


def _codec_standing(registry: Any, budget: Budget, codec: str, qualities: list[Any],
                    work: Path, device: str, progress: bool, method: str) -> Standing:
    """Codec-only and codec + bicubic curves of ``codec`` and JPEG (each at its budget
    qualities) on the test split, and BD of ``codec`` against JPEG: how strong the learned
    codec is."""
    from jcsr_bench.run import engine

    curves: dict[tuple[str, str], Curve] = {}
    ladders = ((codec, qualities), ("jpeg", _qualities(budget, "jpeg", registry)))
    for name, ladder in ladders:
        summary = engine.run(registry=registry, datasets=[budget.test], codecs=[name],
                             srs=["none", "bicubic"], qualities=ladder,
                             limit=budget.test_limit, metrics=METRICS, device=device,
                             output=work / f"codec-only-{safe_filename(name)}",
                             progress=progress)
        if summary.exit_code:
            raise JcsrError(f"the codec-only evaluation had failing cells; see "
                            f"{summary.output}")
        found, _ = load_curves(summary.db_path)
        for sr in ("none", "bicubic"):
            curves[name, sr] = next(c for c in found if c.codec == name and c.sr == sr
                                    and c.dataset == budget.test)

    def against_jpeg(sr: str) -> dict[str, float | str]:
        return {title: _bd(curves["jpeg", sr], curves[codec, sr], kind, metric, method)
                for title, kind, metric in COLUMNS}

    return Standing({name: curves[name, "none"] for name, _ in ladders},
                    against_jpeg("none"), against_jpeg("bicubic"))


def _point_text(point: Any) -> str:
    def value(metric: str, digits: int) -> str:
        number = point.values.get(metric)
        return "n/a" if number is None else f"{number:.{digits}f}"

    return (f"q{point.quality}: {value('bpp', 3)} bpp, {value('psnr-rgb', 2)} dB, "
            f"{value('ms-ssim-rgb', 4)}")


def render_standing(learned: TrainedCodec, standing: Standing, test: str) -> str:
    """The learned codec's recipe and its own standing, under the main table."""
    from tabulate import tabulate

    recipe = learned.recipe
    channels = (f"N={recipe.channels[0]}, M={recipe.channels[1]}" if recipe.channels
                else "CompressAI's channels per quality")
    lambdas = ", ".join(f"q{q}: {lam}" for q, lam in learned.lambdas.items())
    rows = [[name, *(_point_text(p) for p in curve.points)]
            for name, curve in standing.curves.items()]
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    digits = {"BD-Rate PSNR (%)": 2, "BD-PSNR (dB)": 3, "BD-Rate MS-SSIM (%)": 2,
              "BD-MS-SSIM (dB)": 3}
    return "\n".join([
        "",
        f"## The learned codec `{learned.name}`",
        "",
        f"- Trained here from scratch by `train-codec`'s code: {learned.arch} "
        f"({learned.metric}; {channels}), one model per quality with CompressAI's "
        f"published lambda ({lambdas}), {recipe.steps} steps each"
        + (f" ({recipe.first_steps} for the first)" if recipe.first_steps else "")
        + (f" (q{recipe.order(list(learned.weights))[0]} from a seeded random "
           "initialisation, each "
           + ("lower quality from the next higher one's" if recipe.descending else
              "later quality from the previous one's") + " final network)"
           if recipe.warm_start else " (each from a seeded random initialisation)")
        + (f", learning rate x {recipe.gamma} after {recipe.lr_drop:.0%} of each quality's "
           "steps" if recipe.lr_drop else "")
        + f", batch {recipe.batch}, "
        f"{recipe.patch}x{recipe.patch} crops of the "
        f"{'x4 LR versions of the ' if recipe.source == 'lr' else ''}`{learned.dataset}` images"
        + (f" (first {recipe.images})" if recipe.images else "")
        + f", Adam {recipe.lr}, codec seed {recipe.seed} (fixed across the SR seeds, "
        "like the paper's published codec).",
        f"- Trained-weights store key `{learned.key}`; this run trained "
        f"{learned.trained_here} of its {len(learned.weights)} models in "
        f"{learned.seconds / 60:.1f} min (the rest came from the store).",
        "",
        f"`{learned.name}` against JPEG on `{test}`: codec only (`--sr none`: decoded LR "
        "scored against the LR input), and both followed by the same fixed bicubic x4 "
        "(scored at HR against the original, where MS-SSIM's five scales fit):",
        "",
        tabulate([[f"{learned.name} vs jpeg (codec only)",
                   *(_fmt(standing.bd[t], digits[t]) for t, _, _ in COLUMNS)],
                  [f"{learned.name} vs jpeg (both + bicubic x4, at HR)",
                   *(_fmt(standing.bicubic_bd[t], digits[t]) for t, _, _ in COLUMNS)]],
                 headers=["Comparison", *(t for t, _, _ in COLUMNS)], tablefmt="pipe",
                 disable_numparse=True),
        "",
        "Codec-only points (quality: bpp, PSNR-RGB, MS-SSIM-RGB):",
        "",
        tabulate(rows, headers=["Codec", *(f"point {i + 1}" for i in range(width - 1))],
                 tablefmt="pipe", disable_numparse=True),
        "",
        *(f"n/a {metric}: {reason}" for metric, reason in sorted({
            (m, r) for c in standing.curves.values() for p in c.points
            for m, r in p.reasons.items() if m in ("bpp", "psnr-rgb", "ms-ssim-rgb")})),
        "",
    ])
