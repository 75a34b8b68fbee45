"""Learned-codec training: CompressAI-style rate-distortion training, one model per quality.

Recipe (CompressAI's example trainer; docs/reproduction.md): random crops, loss
``lambda * 255^2 * MSE + bpp`` (or ``lambda * (1 - MS-SSIM) + bpp``) with the published
lambda per quality, Adam 1e-4 on the network, a separate Adam (1e-3) on the entropy
bottleneck's ``quantiles`` (the aux loss), gradient clipping at norm 1.0; a constant
learning rate, or -- ``milestones`` -- the network's learning rate times ``gamma`` at
each milestone step (CompressAI's plateau schedule needs a validation set: not done).

Patches that are not a multiple of the architecture's 64 (96x96, the paper's
low-resolution patches) are handled exactly as the evaluation handles whole images
(CompressAI's evaluator and our ``compressai`` codec): padded **centred with zeros** to
the next multiple of 64 (96 -> 128), and the output cropped back. The distortion is
computed on the valid 96x96 region only; the rate counts every latent symbol, padding
included -- what the real bitstream of a 96x96 image costs -- divided by the *valid*
pixels. So training optimises the very bpp / distortion that evaluation measures.

Source of the crops: the dataset images (``source="hr"``), or their x4 (MATLAB-bicubic)
LR versions (``source="lr"``), which is what the codec sees in the joint pipeline; the
command's ``auto`` picks LR for patches up to 96 (the paper's 96x96 "low-resolution
patches") and HR otherwise, and says so.

The result, per quality, is ``{"state_dict": ...}`` saved after ``update(force=True)``,
loadable at once by the ``compressai`` codec type (``weights: {q: path}``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jcsr_bench.kit.errors import JcsrError, RegistryError
from jcsr_bench.kit.version import __version__
from jcsr_bench.training import checkpoint
from jcsr_bench.training.loop import TrainingDiverged, append_log, resolve_device, run_steps
from jcsr_bench.training.pairs import PairSet, prepare_pairs, sample_batch

LAMBDAS = {
    "mse": [0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800],
    "ms-ssim": [2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00],
}
MIN_DIV = 64  # 2^6: the hyperprior's total downsampling
DEFAULTS: dict[str, Any] = {
    "steps": 500_000,
    "batch": 16,
    "lr": 1e-4,
    "aux_lr": 1e-3,
    "clip": 1.0,
    "checkpoint_every": 5_000,
    "log_every": 100,
}


def lambda_for(metric: str, quality: int) -> float:
    """CompressAI's published training lambda for ``quality`` (1..8)."""
    table = LAMBDAS.get(metric)
    if table is None:
        raise RegistryError(f"no lambda table for metric {metric!r}; use mse or ms-ssim")
    if not 1 <= int(quality) <= len(table):
        raise JcsrError(f"quality {quality!r} has no lambda (qualities 1..{len(table)})")
    return table[int(quality) - 1]


def pad_centred(x: torch.Tensor, multiple: int = MIN_DIV) -> tuple[torch.Tensor, tuple]:
    """Zero-pad NCHW centred to a multiple; returns the padded tensor and the crop box."""
    from compressai.ops import compute_padding

    h, w = x.shape[-2:]
    pad, _ = compute_padding(h, w, min_div=multiple)
    left, _, top, _ = pad
    return nn.functional.pad(x, pad, mode="constant", value=0.0), (top, left, h, w)


class RateDistortionLoss(nn.Module):
    """``lambda * D + bpp``; D = 255^2 * MSE or 1 - MS-SSIM, on the valid region only."""

    def __init__(self, lmbda: float, metric: str = "mse"):
        super().__init__()
        if metric not in LAMBDAS:
            raise RegistryError(f"unknown distortion {metric!r}; use mse or ms-ssim")
        self.lmbda, self.metric = float(lmbda), metric

    def forward(self, output: dict[str, Any], target: torch.Tensor,
                box: tuple[int, int, int, int] | None = None) -> dict[str, torch.Tensor]:
        n, _, h, w = target.shape
        top, left = (box[0], box[1]) if box else (0, 0)
        x_hat = output["x_hat"][..., top:top + h, left:left + w]
        bits = sum(torch.log(lk).sum() for lk in output["likelihoods"].values()) / -math.log(2)
        out = {"bpp_loss": bits / (n * h * w)}
        if self.metric == "mse":
            out["mse_loss"] = nn.functional.mse_loss(x_hat, target)
            out["loss"] = self.lmbda * 255**2 * out["mse_loss"] + out["bpp_loss"]
        else:
            from pytorch_msssim import ms_ssim

            if min(h, w) <= 160:
                raise JcsrError(f"MS-SSIM training needs patches larger than 160 (5 scales); "
                                f"got {h}x{w}: use --patch 256 or the mse metric")
            out["ms_ssim_loss"] = 1 - ms_ssim(x_hat, target, data_range=1.0)
            out["loss"] = self.lmbda * out["ms_ssim_loss"] + out["bpp_loss"]
        return out


def build_network(arch: str, quality: int, channels: tuple[int, ...] | None = None,
                  seed: int = 0) -> nn.Module:
    """A freshly initialised CompressAI network (zoo channels, or ``channels`` = (N, M))."""
    from compressai.zoo import image as zoo

    if arch not in zoo.model_architectures:
        raise RegistryError(f"unknown compressai architecture {arch!r}; known: "
                            f"{', '.join(zoo.model_architectures)}")
    args = tuple(channels) if channels else zoo.cfgs[arch][int(quality)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return zoo.model_architectures[arch](*args)


def _optimisers(net: nn.Module, lr: float, aux_lr: float):
    main = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")
            and p.requires_grad]
    aux = [p for n, p in net.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    return torch.optim.Adam(main, lr=lr), torch.optim.Adam(aux, lr=aux_lr)


def fit_codec(
    net: nn.Module,
    images: PairSet,
    *,
    lmbda: float,
    metric: str = "mse",
    patch: int = 256,
    steps: int = 1000,
    batch: int = 16,
    lr: float = 1e-4,
    aux_lr: float = 1e-3,
    clip: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    state_path: Path | None = None,
    log_path: Path | None = None,
    resume: bool = False,
    checkpoint_every: int = 5000,
    log_every: int = 100,
    progress: bool = True,
    desc: str = "train-codec",
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> dict[str, Any]:
    """Rate-distortion training of ``net`` (in place) on random crops of ``images.hr``."""
    device = resolve_device(device)
    checkpoint.seed_everything(seed)
    net = net.to(device).train()
    opt, aux_opt = _optimisers(net, lr, aux_lr)
    sched = (torch.optim.lr_scheduler.MultiStepLR(opt, [int(m) for m in milestones], gamma)
             if milestones else None)
    criterion = RateDistortionLoss(lmbda, metric)
    config = {"lmbda": lmbda, "metric": metric, "patch": patch, "batch": batch, "lr": lr,
              "aux_lr": aux_lr, "clip": clip, "seed": seed}
    if sched is not None:  # only then: states saved without a schedule still resume
        config.update(milestones=[int(m) for m in milestones], gamma=gamma)
    crops = PairSet(images.names, images.hr, images.hr, 1, images.identity)
    step = 0
    if resume and state_path is not None and state_path.is_file():
        state = checkpoint.load(state_path)  # CPU: RNG states must stay there
        changed = sorted(k for k in config if state["config"].get(k) != config[k])
        if changed or state.get("data") != images.identity:
            raise JcsrError(f"cannot resume {state_path}: the config or data changed "
                            f"({', '.join(changed) or 'data'}); run without --resume")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        if sched is not None:
            sched.load_state_dict(state["sched"])
        checkpoint.set_rng_state(state["rng"])
        step = int(state["step"])

    def save(step: int, last: dict[str, float]) -> None:
        if state_path is not None:
            checkpoint.atomic_save({"step": step, "config": config, "data": images.identity,
                                    "net": net.state_dict(), "opt": opt.state_dict(),
                                    "aux_opt": aux_opt.state_dict(),
                                    **({"sched": sched.state_dict()} if sched else {}),
                                    "rng": checkpoint.rng_state(), "losses": last}, state_path)

    def one_step(step: int) -> tuple[dict[str, float], dict[str, Any]]:
        _, x = sample_batch(crops, batch, patch, seed, step, augment=False)
        x = x.to(device)
        padded, box = pad_centred(x)
        out = criterion(net(padded), x, box)
        bad = {k: float(v.detach()) for k, v in out.items() if not torch.isfinite(v)}
        if bad:
            raise TrainingDiverged(
                f"loss became non-finite at step {step + 1}: {bad}; stopped, the last "
                f"good training state is kept at {state_path}")
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        if sched is not None:
            sched.step()
        aux_opt.zero_grad(set_to_none=True)
        aux = net.aux_loss()
        aux.backward()
        aux_opt.step()
        last = {k: float(v.detach()) for k, v in out.items()}
        last["aux_loss"] = float(aux.detach())
        return last, {}

    end = run_steps(one_step, start=step, total=steps, save=save,
                    log=lambda step, last, _: append_log(log_path, {"step": step, **last}),
                    log_every=log_every, checkpoint_every=checkpoint_every, desc=desc,
                    progress=progress)
    return {"status": end.status, "step": end.step, "losses": end.losses, "config": config,
            "steps_per_s": end.steps_run / end.seconds if end.seconds > 0 else None}


def save_for_codec(net: nn.Module, path: Path) -> None:
    """``update(force=True)`` (entropy-coder tables), then ``{"state_dict": ...}`` atomically."""
    net = net.cpu().eval()
    net.update(force=True)
    checkpoint.atomic_save({"state_dict": net.state_dict()}, path)


def checkpoint_file(folder: Path, arch: str, metric: str, source: str, patch: int,
                    quality: int) -> Path:
    """Where ``train_codec`` writes one quality's model (beside its state, log, sidecar)."""
    return folder / f"{arch}-{metric}-{source}{patch}-q{quality}.pth.tar"


def state_file(model: Path) -> Path:
    """The resumable training state ``train_codec`` keeps beside a model checkpoint."""
    return model.with_name(model.name.removesuffix(".pth.tar") + ".state.pth")


def _ladder(instance: Any, metric: str, qualities: Sequence[int] | None) -> list[int]:
    wanted = [int(q) for q in (qualities or instance.params.get("qualities") or
                               range(1, len(LAMBDAS.get(metric, [])) + 1))]
    for q in wanted:
        lambda_for(metric, q)
    return wanted


def train_codec(
    registry: Any,
    codec: str,
    dataset: str,
    qualities: Sequence[int] | None = None,
    *,
    patch: int = 256,
    steps: int | None = None,
    batch: int | None = None,
    device: str | torch.device = "auto",
    output: Path = Path("runs"),
    resume: bool = False,
    seed: int = 0,
    source: str = "auto",
    channels: tuple[int, int] | None = None,
    lr: float | None = None,
    images: int | None = None,
    checkpoint_every: int | None = None,
    warm_start: Path | None = None,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    progress: bool = True,
    log: Any = print,
) -> dict[int, Path]:
    """Train ``codec``'s architecture at each quality; returns ``{quality: checkpoint}``.

    ``warm_start``: a training state (``*.state.pth``) whose network each quality starts
    from instead of the seeded random initialisation (same architecture and channels).
    """
    instance = registry.resolve("codecs", codec)
    if instance.type != "compressai":
        raise RegistryError(f"{instance.where}: codecs.{codec} is a {instance.type!r} codec; "
                            "train-codec trains compressai architectures only")
    arch = str(instance.params.get("arch") or "bmshj2018-hyperprior")
    metric = str(instance.params.get("metric") or "mse")
    wanted = _ladder(instance, metric, qualities)
    if source == "auto":
        source = "lr" if patch <= 96 else "hr"
    if source not in ("hr", "lr"):
        raise JcsrError(f"source must be hr, lr or auto, got {source!r}")
    log(f"train-codec: {arch} ({metric}) q{wanted} on {patch}x{patch} crops of the "
        f"{'x4 LR versions of the' if source == 'lr' else 'HR'} {dataset} images"
        + (f"; padded centred with zeros to {math.ceil(patch / MIN_DIV) * MIN_DIV}, "
           "distortion on the valid region, rate of the whole padded latent"
           if patch % MIN_DIV else ""))
    data = registry.build("datasets", dataset)
    sets = prepare_pairs(data, scale=4, kernel="matlab", limit=images, progress=progress)
    clean = sets[None]
    crops = clean.lr if source == "lr" else clean.hr
    chosen = PairSet(clean.names, crops, crops, 1, f"{clean.identity}:{source}", clean.info)
    dev = resolve_device(device)
    output = Path(output).expanduser()
    output.mkdir(parents=True, exist_ok=True)
    written: dict[int, Path] = {}
    for q in wanted:
        ckpt = checkpoint_file(output, arch, metric, source, patch, q)
        stem = ckpt.name.removesuffix(".pth.tar")
        net = build_network(arch, q, channels, seed)
        if warm_start is not None:
            net.load_state_dict(checkpoint.load(warm_start)["net"])
        result = fit_codec(
            net, chosen, lmbda=lambda_for(metric, q), metric=metric, patch=patch,
            steps=int(steps or DEFAULTS["steps"]), batch=int(batch or DEFAULTS["batch"]),
            lr=float(lr or DEFAULTS["lr"]), aux_lr=DEFAULTS["aux_lr"], clip=DEFAULTS["clip"],
            seed=seed, device=dev, state_path=state_file(ckpt),
            log_path=output / f"{stem}.log.jsonl", resume=resume,
            checkpoint_every=int(checkpoint_every or DEFAULTS["checkpoint_every"]),
            log_every=DEFAULTS["log_every"],
            progress=progress, desc=f"{codec} q{q}", milestones=milestones, gamma=gamma)
        if result["status"] == "interrupted":
            log(f"interrupted at step {result['step']} (q{q}); continue with --resume")
            break
        save_for_codec(net, ckpt)
        sidecar = ckpt.with_name(f"{stem}.json")
        tmp = sidecar.with_name(f".{sidecar.name}.tmp")
        tmp.write_text(json.dumps({
            "arch": arch, "metric": metric, "quality": q, "source": source, "patch": patch,
            "channels": list(channels) if channels else None, "steps": result["step"],
            "final_losses": result["losses"], "config": result["config"],
            "data": {**clean.info, "identity": chosen.identity, "dataset_name": dataset},
            "device": str(dev), "harness_version": __version__,
            "steps_per_s_last_session": result["steps_per_s"],
        }, indent=2, default=str))
        os.replace(tmp, sidecar)
        written[q] = ckpt
        log(f"q{q}: {result['step']} steps, losses {result['losses']} -> {ckpt}")
    if written:
        lines = [f"      {q}: {path.resolve()}" for q, path in written.items()]
        log("benchmark them with a registry entry such as:\n"
            f"codecs:\n  {codec}-trained:\n    type: compressai\n    arch: {arch}\n"
            f"    metric: {metric}\n    qualities: {list(written)}\n    weights:\n"
            + "\n".join(lines))
    return written


def train_codec_command(
    registry: Any,
    codec: str,
    dataset: str,
    qualities: Sequence[int] | None,
    patch: int,
    steps: int | None,
    batch: int | None,
    device: str,
    output: Path,
    resume: bool,
    seed: int,
) -> int:
    """``jcsr-bench train-codec``: 0 when every quality finished, 130 when interrupted."""
    instance = registry.resolve("codecs", codec)
    wanted = _ladder(instance, str(instance.params.get("metric") or "mse"), qualities)
    written = train_codec(registry, codec, dataset, wanted, patch=patch, steps=steps,
                          batch=batch, device=device, output=output, resume=resume, seed=seed)
    return 0 if len(written) == len(wanted) else 130
