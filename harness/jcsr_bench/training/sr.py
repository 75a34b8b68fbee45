"""Adaptive SR (baseline 2): ESRGAN fine-tuned on one codec quality's decoded LR images.

``train_sr`` trains one generator per codec quality and writes its EMA weights to the
trained-weights store (``jcsr_bench.artifacts.trained_store.checkpoint_path(adapt identity, codec
identity, quality)``) with a JSON sidecar; ``run --sr esrgan-b2`` then resolves them
through the SR component's ``for_codec``. The recipe is ESRGAN's (see
``jcsr_bench.training.config`` for every knob): an optional PSNR-oriented L1 stage,
then the GAN stage -- VGG19 conv5_4 perceptual L1 + lambda * relativistic-average GAN
+ eta * pixel L1 against a VGG-style discriminator, Adam, MultiStepLR, EMA.

Robustness: a resumable state (generator, EMA, discriminator, optimisers, schedulers,
RNG states, step) is written atomically every ``checkpoint_every`` steps beside the
checkpoint (``q<quality>.state.pth``); ``resume=True`` continues it exactly (batches
are a function of (seed, step); bit-identical on the CPU, within cuDNN's nondeterminism
-- about 1e-6 -- on CUDA); Ctrl-C finishes the current step, saves and returns;
a non-finite loss stops with :class:`TrainingDiverged` and leaves the last good state
untouched. Losses go to ``q<quality>.log.jsonl`` and the progress bar.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jcsr_bench.archs.discriminator import VGGStyleDiscriminator
from jcsr_bench.archs.rrdbnet import DEFAULT_ARCH, RRDBNet
from jcsr_bench.artifacts import trained_store as trained
from jcsr_bench.components import missing_weights_of
from jcsr_bench.kit import paths
from jcsr_bench.kit.errors import JcsrError, RegistryError, WeightsError
from jcsr_bench.kit.version import __version__
from jcsr_bench.training import TRAINING_CODE_VERSION, checkpoint, losses
from jcsr_bench.training.config import (
    ema_decay,
    needs_discriminator,
    needs_vgg,
    unreached_milestones,
)
from jcsr_bench.training.loop import (
    TrainingDiverged,
    append_log,
    cudnn_benchmark,
    resolve_device,
    run_steps,
)
from jcsr_bench.training.needs import missing_weights
from jcsr_bench.training.pairs import PairSet, prepare_pairs, sample_batch
from jcsr_bench.training.ray_jobs import fit_on_ray

# Keys that may change between a saved state and its resumption.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "log_every", "images"}





@dataclass
class FitResult:
    """What one training run produced (``ema_state`` is on the CPU)."""

    status: str  # "done" or "interrupted"
    step: int
    ema_state: dict[str, torch.Tensor]
    losses: dict[str, float]
    seconds: float
    steps_run: int
    state_path: Path | None = None

    @property
    def steps_per_s(self) -> float:
        return self.steps_run / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class TrainResult:
    """One (codec, quality) of ``train_sr``."""

    quality: Any
    status: str  # "done", "interrupted" or "exists"
    checkpoint: Path
    sidecar: Path
    step: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    steps_per_s: float = float("nan")





# ----------------------------------------------------------------------------- helpers








def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def _check_finite(values: dict[str, torch.Tensor], step: int, state_path: Path | None) -> None:
    bad = {k: float(v.detach()) for k, v in values.items() if not torch.isfinite(v).all()}
    if bad:
        kept = (f"the last good training state is kept at {state_path}"
                if state_path is not None and state_path.is_file() else
                "no training state had been saved yet")
        raise TrainingDiverged(
            f"loss became non-finite at step {step + 1}: {bad}; training stopped and "
            f"{kept}. Lower the learning rate (adapt.lr / adapt.l1_lr) or check the data, "
            "then resume or restart."
        )


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _config_mismatch(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    keys = (set(saved) | set(config)) - RESUMABLE_CHANGES
    return sorted(k for k in keys if saved.get(k) != config.get(k))





def _truncate_log(path: Path | None, step: int) -> None:
    """On resume, drop log lines written after the state being resumed."""
    if path is None or not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


# ----------------------------------------------------------------------------- fit


def fit(
    generator: nn.Module,
    pairs: PairSet,
    config: dict[str, Any],
    *,
    device: str | torch.device = "cpu",
    state_path: Path | None = None,
    log_path: Path | None = None,
    resume: bool = False,
    feature_extractor: nn.Module | None = None,
    progress: bool = True,
    desc: str = "train-sr",
    sampler: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> FitResult:
    """Train ``generator`` on ``pairs`` with ``config``; the ESRGAN loop, resumable.

    ``generator`` is modified in place. ``feature_extractor`` replaces VGG19 conv5_4
    for the perceptual loss (tests, other backbones); it is only needed when the GAN
    stage has a perceptual weight. ``sampler(step)`` replaces the aligned LR/HR crops
    of ``pairs`` with other ``(input, HR)`` batches (joint decoding's latent crops;
    ``pairs`` then only needs an ``identity``). cuDNN autotuning is on during training.
    """
    with cudnn_benchmark():
        return _fit(generator, pairs, config, device=device, state_path=state_path,
                    log_path=log_path, resume=resume, feature_extractor=feature_extractor,
                    progress=progress, desc=desc, sampler=sampler)


def _fit(
    generator: nn.Module,
    pairs: PairSet,
    config: dict[str, Any],
    *,
    device: str | torch.device,
    state_path: Path | None,
    log_path: Path | None,
    resume: bool,
    feature_extractor: nn.Module | None,
    progress: bool,
    desc: str,
    sampler: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None,
) -> FitResult:
    device = resolve_device(device)
    seed = int(config["seed"])
    checkpoint.seed_everything(seed)

    net_g = generator.to(device).train()
    net_ema = copy.deepcopy(net_g).eval()
    for param in net_ema.parameters():
        param.requires_grad_(False)
    betas = tuple(float(b) for b in config["betas"])
    opt_l1 = torch.optim.Adam(net_g.parameters(), lr=float(config["l1_lr"]), betas=betas)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=float(config["lr"]), betas=betas)
    milestones = [int(m) for m in config["milestones"]]
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, milestones, float(config["gamma"]))
    net_d = opt_d = sched_d = None
    if needs_discriminator(config):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            net_d = VGGStyleDiscriminator(3, int(config["disc_width"]), int(config["patch"]))
        net_d = net_d.to(device).train()
        opt_d = torch.optim.Adam(net_d.parameters(), lr=float(config["lr"]), betas=betas)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, milestones,
                                                       float(config["gamma"]))
    perceptual = None
    if needs_vgg(config):
        if feature_extractor is None:
            from jcsr_bench.archs.vgg import vgg19_conv54

            feature_extractor = vgg19_conv54()
        perceptual = losses.PerceptualLoss(feature_extractor).to(device)

    step = 0
    if resume and state_path is not None and state_path.is_file():
        state = checkpoint.load(state_path)  # CPU: RNG states must stay there
        changed = _config_mismatch(state.get("config", {}), config)
        if state.get("training_code_version", 1) != TRAINING_CODE_VERSION:
            changed.append(f"training code version {state.get('training_code_version', 1)}"
                           f" -> {TRAINING_CODE_VERSION}")
        if changed:
            raise JcsrError(
                f"cannot resume {state_path}: the training config changed ({', '.join(changed)}"
                "); run without --resume to start over, or restore the settings"
            )
        if state.get("data") != pairs.identity:
            raise JcsrError(f"cannot resume {state_path}: it was trained on other data "
                            f"({state.get('data')} != {pairs.identity})")
        net_g.load_state_dict(state["generator"])
        net_ema.load_state_dict(state["ema"])
        opt_l1.load_state_dict(state["opt_l1"])
        opt_g.load_state_dict(state["opt_g"])
        sched_g.load_state_dict(state["sched_g"])
        if net_d is not None and "discriminator" in state:  # else: GAN stage starts now
            net_d.load_state_dict(state["discriminator"])
            opt_d.load_state_dict(state["opt_d"])
            sched_d.load_state_dict(state["sched_d"])
        checkpoint.set_rng_state(state["rng"])
        step = int(state["step"])
        _truncate_log(log_path, step)
    elif log_path is not None and log_path.is_file():
        log_path.unlink()

    def save_state(step: int, last: dict[str, float]) -> None:
        if state_path is None:
            return
        payload: dict[str, Any] = {
            "step": step,
            "config": dict(config),
            "data": pairs.identity,
            "generator": net_g.state_dict(),
            "ema": net_ema.state_dict(),
            "opt_l1": opt_l1.state_dict(),
            "opt_g": opt_g.state_dict(),
            "sched_g": sched_g.state_dict(),
            "rng": checkpoint.rng_state(),
            "losses": dict(last),
            "harness_version": __version__,
            "training_code_version": TRAINING_CODE_VERSION,
        }
        if net_d is not None:
            payload.update(discriminator=net_d.state_dict(), opt_d=opt_d.state_dict(),
                           sched_d=sched_d.state_dict())
        checkpoint.atomic_save(payload, state_path)

    total = int(config["steps"])
    l1_steps = int(config["l1_steps"])
    batch, patch = int(config["batch"]), int(config["patch"])
    augment = bool(config["augment"])
    w_pix, w_gan = float(config["pixel_weight"]), float(config["gan_weight"])
    w_percep = float(config["perceptual_weight"])
    def one_step(step: int) -> tuple[dict[str, float], dict[str, Any]]:
        lr_b, hr_b = (sampler(step) if sampler is not None else
                      sample_batch(pairs, batch, patch, seed, step, augment))
        lr_b = lr_b.to(device, non_blocking=True)
        hr_b = hr_b.to(device, non_blocking=True)
        terms: dict[str, torch.Tensor] = {}
        if step < l1_steps:  # PSNR-oriented stage
            output = net_g(lr_b)
            terms["l_pix"] = losses.pixel_l1(output, hr_b)
            _check_finite(terms, step, state_path)
            opt_l1.zero_grad(set_to_none=True)
            terms["l_pix"].backward()
            opt_l1.step()
            lr_now = opt_l1.param_groups[0]["lr"]
        else:  # GAN stage: generator update, then discriminator update
            if net_d is not None:
                net_d.requires_grad_(False)
            output = net_g(lr_b)
            g_total = torch.zeros((), device=device)
            if w_pix > 0:
                terms["l_pix"] = losses.pixel_l1(output, hr_b)
                g_total = g_total + w_pix * terms["l_pix"]
            if perceptual is not None:
                terms["l_percep"] = perceptual(output, hr_b)
                g_total = g_total + w_percep * terms["l_percep"]
            if net_d is not None:
                real_logits = net_d(hr_b).detach()
                fake_logits = net_d(output)
                terms["l_g_gan"] = losses.relativistic_g_loss(real_logits, fake_logits)
                g_total = g_total + w_gan * terms["l_g_gan"]
            terms["l_g_total"] = g_total
            _check_finite(terms, step, state_path)
            opt_g.zero_grad(set_to_none=True)
            g_total.backward()
            opt_g.step()
            if net_d is not None:
                net_d.requires_grad_(True)
                real_logits = net_d(hr_b)
                fake_logits = net_d(output.detach())
                terms["l_d"] = losses.relativistic_d_loss(real_logits, fake_logits)
                _check_finite({"l_d": terms["l_d"]}, step, state_path)
                opt_d.zero_grad(set_to_none=True)
                terms["l_d"].backward()
                opt_d.step()
                sched_d.step()
            lr_now = opt_g.param_groups[0]["lr"]
            sched_g.step()
        _ema_update(net_ema, net_g, ema_decay(config, step))
        return {k: float(v.detach()) for k, v in terms.items()}, {"lr": lr_now}

    def log(step: int, last: dict[str, float], extra: dict[str, Any]) -> None:
        append_log(log_path, {"step": step, "stage": "l1" if step <= l1_steps else "gan",
                              **extra, **last, "time": round(time.time(), 3)})

    end = run_steps(one_step, start=step, total=total, save=save_state, log=log,
                    log_every=int(config["log_every"]),
                    checkpoint_every=int(config["checkpoint_every"]), desc=desc,
                    progress=progress)
    return FitResult(end.status, end.step, _cpu_state(net_ema), end.losses, end.seconds,
                     end.steps_run, state_path)


# ----------------------------------------------------------------------------- registry


def initial_generator(registry: Any, sr_instance: Any, config: dict[str, Any]) -> nn.Module:
    """The generator to start from: ``adapt.init``'s network, or a seeded random RRDBNet."""
    arch = sr_instance.params.get("arch") or {}
    init = config.get("init")
    if init:
        component = registry.build("sr", init)
        getter = getattr(component, "_network", None)
        net = getter() if callable(getter) else getattr(component, "net", None)
        if not isinstance(net, nn.Module):
            raise RegistryError(
                f"sr.{sr_instance.name}.adapt.init: {init!r} is not a torch RRDBNet model "
                "(an esrgan instance with weights is expected)"
            )
        net = copy.deepcopy(net).cpu().float()
        net_arch = getattr(net, "arch", None)
        if arch and net_arch is not None and {**net_arch, **arch} != net_arch:
            raise RegistryError(
                f"sr.{sr_instance.name}: arch {arch} disagrees with the init weights of "
                f"{init!r} ({net_arch}); drop 'arch' or change 'init'"
            )
        return net.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config["seed"]))
        return RRDBNet(**{**DEFAULT_ARCH, **arch}).train()


def _adaptive(registry: Any, sr: str) -> tuple[Any, Any, dict[str, Any]]:
    instance = registry.resolve("sr", sr)
    adapt = instance.params.get("adapt")
    if not isinstance(adapt, dict):
        adaptive = [n for n, i in registry.instances("sr").items()
                    if isinstance(i.params.get("adapt"), dict)]
        raise RegistryError(
            f"{instance.where}: sr.{sr} has no `adapt:` section, so there is nothing to "
            f"train. Adaptive SR instances: {', '.join(adaptive) or 'none'}."
        )
    component = registry.build("sr", sr)
    if not callable(getattr(component, "training_identity", None)):
        raise RegistryError(f"sr.{sr}: type {instance.type!r} does not support adaptation")
    return instance, component, adapt


def _check_qualities(codec_name: str, codec: Any, qualities: Sequence[Any] | None) -> list:
    ladder = list(getattr(codec, "qualities", []) or [])
    if not qualities:
        if not ladder:
            raise JcsrError(f"codec {codec_name!r} has no quality ladder: pass --qualities")
        return ladder
    unknown = [q for q in qualities if ladder and q not in ladder]
    if unknown:
        raise JcsrError(f"codec {codec_name!r} has no quality {unknown}; its ladder is {ladder}")
    return list(qualities)


def _check_requirements(registry: Any, sr: str, config: dict[str, Any], codec: str,
                        codec_component: Any, qualities: Sequence[Any], vgg: bool,
                        log: Any) -> None:
    """Before any data is read, every weight file training lacks (``init``'s, VGG19's,
    the codec's): offline, all of them in one error; online, a note (then downloaded)."""
    needs = missing_weights(registry, config, vgg=vgg)
    needs += [(f"codec {codec}", text)
              for text in missing_weights_of(codec_component, list(qualities))]
    if not needs:
        return
    listing = "\n".join(f"  - {what}: {remedy}" for what, remedy in needs)
    if paths.offline():
        raise WeightsError(
            f"sr.{sr} cannot train offline (--offline / JCSR_BENCH_OFFLINE=1); missing:\n"
            f"{listing}"
        )
    log(f"training sr.{sr} will download (verified):\n{listing}")


def _write_sidecar(path: Path, payload: dict[str, Any]) -> None:
    from jcsr_bench.kit.atomic import atomic_write

    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True, default=str))


def train_sr(
    registry: Any,
    sr: str,
    codec: str,
    dataset: str | None = None,
    qualities: Sequence[Any] | None = None,
    *,
    steps: int | None = None,
    batch: int | None = None,
    patch: int | None = None,
    device: str | torch.device = "auto",
    resume: bool = False,
    seed: int | None = None,
    only_missing: bool = False,
    feature_extractor: nn.Module | None = None,
    progress: bool = True,
    log: Any = print,
    executor: str = "local",
    gpus_per_job: float = 0.0,
    ray_address: str | None = None,
) -> list[TrainResult]:
    """Train ``sr`` (an adaptive instance) for ``codec`` at each quality; see module doc.

    ``only_missing`` skips qualities whose checkpoint already exists (``run --train``).
    Locally the qualities train one after another and stop after the first interrupted
    one (its state is saved for ``resume``); ``executor="ray"`` trains them as
    concurrent Ray tasks with ``gpus_per_job`` of a GPU each
    (``jcsr_bench.training.ray_jobs``).
    """
    if executor not in ("local", "ray"):
        raise JcsrError(f"--executor must be local or ray, got {executor!r}")

    instance, component, adapt = _adaptive(registry, sr)
    if adapt.get("joint"):  # baseline 3 trains synthesis + SR from the latent instead
        raise JcsrError(f"sr.{sr} decodes from the codec's latent (adapt.joint): train it "
                        "with jcsr_bench.training.adaptive.train_adaptive")
    key = component.training_identity(dataset=dataset, steps=steps, batch=batch,
                                      patch=patch, seed=seed)
    config = key.config
    _note_overrides(sr, component, key, log)
    codec_component = registry.build("codecs", codec)
    wanted = _check_qualities(codec, codec_component, qualities)
    late = unreached_milestones(config)
    if late:
        log(f"warning: sr.{sr}: {late}")
    adapt_identity = key.identity
    codec_identity = str(codec_component.identity)
    paths = {q: trained.checkpoint_path(adapt_identity, codec_identity, q) for q in wanted}
    results: list[TrainResult] = []
    todo = []
    for quality in wanted:
        ckpt = paths[quality]
        if only_missing and ckpt.is_file():
            results.append(TrainResult(quality, "exists", ckpt, trained.sidecar_path(ckpt)))
        else:
            todo.append(quality)
    if not todo:
        return results
    dataset_name = str(config["dataset"])
    dev = resolve_device(device)
    _check_requirements(registry, sr, config, codec, codec_component, todo,
                        feature_extractor is None, log)
    if needs_vgg(config) and feature_extractor is None:  # fail before the long data pass
        from jcsr_bench.archs.vgg import vgg19_conv54

        feature_extractor = vgg19_conv54()
    generator = initial_generator(registry, instance, config)
    data = registry.build("datasets", dataset_name)
    log(f"preparing training pairs: {dataset_name} through {codec} at qualities {todo} "
        "(whole images, cached)")
    pair_sets = prepare_pairs(data, scale=int(config["scale"]), kernel=str(config["kernel"]),
                              codec=codec_component, qualities=todo, device=dev,
                              limit=config["images"], progress=progress)
    del codec_component
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    jobs = {quality: {
        "pairs": pair_sets[quality], "config": config,
        "state_path": paths[quality].with_suffix(".state.pth"),
        "log_path": paths[quality].with_suffix(".log.jsonl"),
        "resume": resume or only_missing, "desc": f"{sr} {codec} q{quality}"}
        for quality in todo}
    if executor == "ray":
        log(f"training qualities {todo} as Ray tasks ({gpus_per_job:g} GPU each)")
        fits = fit_on_ray(fit, jobs, generator=generator, feature_extractor=feature_extractor,
                          gpus_per_job=gpus_per_job, address=ray_address)
    else:
        fits = ((q, fit(copy.deepcopy(generator), **job, device=dev,
                        feature_extractor=feature_extractor, progress=progress))
                for q, job in jobs.items())
    for quality, result in fits:
        ckpt = paths[quality]
        state_path, log_path = jobs[quality]["state_path"], jobs[quality]["log_path"]
        pairs = pair_sets[quality]
        sidecar = trained.sidecar_path(ckpt)
        if result.status == "interrupted":
            log(f"interrupted at step {result.step}/{config['steps']} (quality {quality}); "
                f"state saved to {state_path}; continue with --resume")
            results.append(TrainResult(quality, "interrupted", ckpt, sidecar, result.step,
                                       result.losses, result.steps_per_s))
            if executor == "local":
                break
            continue
        checkpoint.atomic_save({"params_ema": result.ema_state}, ckpt)
        _write_sidecar(sidecar, {
            "sr": sr, "adapt_identity": adapt_identity, "codec": codec,
            "codec_identity": codec_identity, "quality": quality, "config": config,
            "trained_from": key.record(),
            "data": {**pairs.info, "identity": pairs.identity, "dataset_name": dataset_name},
            "steps": result.step, "final_losses": result.losses,
            "steps_per_s_last_session": None if math.isnan(result.steps_per_s)
            else round(result.steps_per_s, 4),
            "device": str(dev) if executor == "local" else
            f"ray ({'cuda' if gpus_per_job else 'cpu'}, {gpus_per_job:g} GPU per job)",
            "harness_version": __version__,
            "training_code_version": TRAINING_CODE_VERSION,
            "torch_version": torch.__version__, "weights": "params_ema (EMA generator)",
            "state": str(state_path), "log": str(log_path),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        log(f"q{quality}: {result.step} steps, {result.steps_per_s:.3g} steps/s, "
            f"losses {result.losses} -> {ckpt}")
        results.append(TrainResult(quality, "done", ckpt, sidecar, result.step,
                                   result.losses, result.steps_per_s))
    return results


def _note_overrides(sr: str, component: Any, key: Any, log: Any) -> None:
    """Say when CLI overrides make a configuration other than the registry's."""
    try:  # the registry configuration's own key needs its dataset to be readable
        if key.identity == component.adapt_identity:
            return
        recipe = component.training_identity().config
    except JcsrError as exc:
        log(f"note: these models get their own key in the trained-weights store "
            f"({key.identity}); sr.{sr}'s registry configuration cannot be keyed here: {exc}")
        return
    changed = [f"{k} {key.config[k]!r}" for k in sorted(key.config)
               if key.config[k] != recipe.get(k)]
    log(f"note: {', '.join(changed)} differ from sr.{sr}'s adapt section: these models get "
        f"their own key in the trained-weights store ({key.identity}); `run --sr {sr}` "
        f"keeps using the registry configuration's ({component.adapt_identity}).")

