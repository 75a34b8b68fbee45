"""Joint decoding (baseline 3): the codec's synthesis transform and the SR network,
fine-tuned together from the decoded latent y-hat to the HR image, per codec quality.

The codec's analysis transform, hyper-prior and entropy models are never touched (only
a copy of its synthesis transform, ``Codec.synthesis_module(quality)``, is trained), so
every payload -- and every rate -- is the codec's own, bit for bit: "same bits, better
pixels". B3 vs B2 measures what decoding jointly gains.

Per quality, the pair starts from the codec's synthesis and from ``adapt.init``'s SR
model for that (codec, quality) -- B2's, when ``init`` is adaptive and trained -- else,
said in the log and the sidecar, from the model B2 itself starts from (B1's weights, or
its seeded random init). Training is :func:`jcsr_bench.training.sr.fit` (the ESRGAN
recipe: optional L1 stage, then perceptual + RaGAN + L1, EMA) on a :class:`JointDecoder`
fed latent crops: each crop keeps a one-latent-pixel margin (16 LR pixels), synthesised
and then cut away, so crop borders do not train the synthesis on zero-padding effects.
Flips are off (a flipped latent is not the latent of a flipped image).

Checkpoints (``{"params_ema": SR state, "synthesis": synthesis state}``, EMA weights)
are keyed by the B3 configuration's identity, the starting SR model's content, the codec
identity (whose weights are the synthesis' start) and the quality.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jcsr_bench.archs.rrdbnet import load_rrdbnet
from jcsr_bench.artifacts import trained_store as trained
from jcsr_bench.artifacts.weights import file_identity, load_checkpoint
from jcsr_bench.components import Latent, offers_latent
from jcsr_bench.kit.atomic import atomic_write
from jcsr_bench.kit.errors import DataError, JcsrError, RegistryError
from jcsr_bench.kit.identity import digest, make_identity, safe_filename
from jcsr_bench.kit.paths import cache_dir
from jcsr_bench.kit.version import __version__
from jcsr_bench.training import TRAINING_CODE_VERSION, checkpoint
from jcsr_bench.training import sr as srt
from jcsr_bench.training.config import needs_vgg, resolve_config
from jcsr_bench.training.loop import resolve_device
from jcsr_bench.training.pairs import LazyArrays, PairSet, _save_npy, _shapes, prepare_pairs

MARGIN = 1  # latent pixels synthesised around each training crop, then cut away
LATENTS_VERSION = 1


class JointDecoder(nn.Module):
    """Synthesis then SR: latent crops ``[B, C, h, w]`` -> HR ``[B, 3, H, W]`` floats."""

    def __init__(self, synthesis: nn.Module, sr: nn.Module, margin: int = 0) -> None:
        super().__init__()
        self.synthesis, self.sr, self.margin = synthesis, sr, int(margin)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = self.synthesis(y)
        if self.margin:
            m = self.margin
            x = x[..., m:-m, m:-m]
        return self.sr(x.clamp(0, 1))


# ----------------------------------------------------------------------------- data


@dataclass
class LatentPairs:
    """Per training image: its latent at one quality (``[C, h, w]``), where the LR image
    sits in the synthesis output, and the HR image (``fit`` reads ``identity``)."""

    names: list[str]
    latents: Sequence[np.ndarray]
    hr: Sequence[np.ndarray]
    offsets: list[tuple[int, int]]
    sizes: list[tuple[int, int]]
    stride: int
    scale: int
    identity: str
    info: dict[str, Any] = field(default_factory=dict)


def prepare_latents(clean: PairSet, codec: Any, quality: Any, *, progress: bool = True
                    ) -> LatentPairs:
    """Each clean LR image through the real codec (``decode_latent(encode(lr))``), cached
    under ``cache_dir()/training`` by content (the clean pairs, codec, quality)."""
    from tqdm import tqdm

    key = {"pairs": clean.identity, "codec": str(codec.identity), "quality": str(quality),
           "version": LATENTS_VERSION}
    folder = cache_dir() / "training" / "latents" / digest(key)
    meta_path = folder / "latents.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is None or meta.get("names") != list(clean.names):
        entries = []
        with torch.inference_mode():
            for name, lr in tqdm(list(zip(clean.names, clean.lr)), desc=f"latents q{quality}",
                                 disable=not progress, leave=False):
                latent = codec.decode_latent(codec.encode(torch.from_numpy(np.array(lr)),
                                                          quality))
                _save_npy(folder / f"{safe_filename(name)}.npy", latent.y[0].numpy())
                entries.append({"offset": list(latent.offset), "size": list(latent.size),
                                "stride": latent.stride})
        meta = {"names": list(clean.names), "entries": entries}
        atomic_write(meta_path, json.dumps(meta))
    entries = meta["entries"]
    latents = LazyArrays([folder / f"{safe_filename(n)}.npy" for n in clean.names])
    return LatentPairs(list(clean.names), latents, clean.hr,
                       [tuple(e["offset"]) for e in entries], [tuple(e["size"]) for e in entries],
                       int(entries[0]["stride"]), clean.scale, digest(key),
                       {**clean.info, "codec": str(codec.identity), "quality": quality,
                        "decoded_by": "decode_latent(encode())"})


def sample_latent_batch(data: LatentPairs, batch: int, patch: int, seed: int, step: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned crops for ``step`` (a pure function of ``(seed, step)``): latents
    ``[B, C, p/(s*16)+2, ...]`` with their margin and HR ``[B, 3, p, p]``."""
    unit = data.scale * data.stride
    if patch % unit:
        raise DataError(f"joint decoding crops whole latent pixels: the HR patch {patch} must "
                        f"be a multiple of scale x latent stride = {unit}; use --patch "
                        f"{max(unit, patch // unit * unit)}")
    pl, s, m = patch // unit, data.stride, MARGIN
    choices = []
    for index, (y_shape, (top, left), (h, w)) in enumerate(zip(
            _shapes(data.latents), data.offsets, data.sizes)):
        rows = [i for i in range(m, y_shape[-2] - pl - m + 1)
                if s * i >= top and s * (i + pl) <= top + h]
        cols = [j for j in range(m, y_shape[-1] - pl - m + 1)
                if s * j >= left and s * (j + pl) <= left + w]
        if rows and cols:
            choices.append((index, rows, cols))
    if not choices:
        raise DataError(f"no training image is large enough for {patch}x{patch} HR patches "
                        f"({pl}x{pl} latent pixels plus a margin of {m}); use a smaller --patch")
    rng = np.random.default_rng([int(seed), int(step)])
    ys, hrs = [], []
    for _ in range(batch):
        index, rows, cols = choices[int(rng.integers(len(choices)))]
        i, j = rows[int(rng.integers(len(rows)))], cols[int(rng.integers(len(cols)))]
        top, left = data.offsets[index]
        ys.append(np.ascontiguousarray(data.latents[index][:, i - m : i + pl + m,
                                                           j - m : j + pl + m]))
        r, c = data.scale * (s * i - top), data.scale * (s * j - left)
        hrs.append(np.ascontiguousarray(data.hr[index][:, r : r + patch, c : c + patch]))
    return (torch.from_numpy(np.stack(ys)).float(),
            torch.from_numpy(np.stack(hrs)).float().div_(255.0))


# ----------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class JointStart:
    """The SR model a quality's pair starts from, by content, and how to load it."""

    identity: str
    note: str
    path: Path | None = None  # B2's checkpoint, when that is the start
    fallback: str | None = None  # the instance whose start is used instead of B2's


def joint_start(registry: Any, component: Any, codec_identity: str, quality: Any) -> JointStart:
    """Where quality ``quality``'s SR network starts: ``adapt.init``'s model for this codec
    and quality when it is adaptive and trained, else the model it starts from."""
    name = (component.adapt or {}).get("init")
    if not name:
        raise RegistryError(f"sr.{component._name}.adapt: joint decoding starts from an SR "
                            "model; give `init` (baseline 2's instance, e.g. esrgan-b2)")
    init = registry.build("sr", name)
    if getattr(init, "adapt", None) is None:
        return JointStart(str(init.weights_identity), f"q{quality}: SR starts from {name}")
    path = init.checkpoint_path(codec_identity, quality)
    if path.is_file():
        return JointStart("sha256:" + file_identity(path, 64),
                          f"q{quality}: SR starts from {name}'s model for this codec ({path})",
                          path)
    start = init.training_identity().init
    what = start.get("name") or "its seeded random initialisation"
    return JointStart(str(start["identity"]),
                      f"q{quality}: {name} has no model for this codec at q{quality}; SR "
                      f"starts from {what} instead (train {name} first for baseline 3 to "
                      f"start from baseline 2)", None, name)


def joint_start_notes(registry: Any, sr: str, codec_name: str, codec: Any,
                      qualities: list[Any]) -> list[str]:
    """Baseline 3 only: the qualities whose B2 model is not trained, so that B3 would
    start from B2's own start instead (said in the dry run, with the command)."""
    component = registry.build("sr", sr)
    if not getattr(component, "consumes_latent", False):
        return []
    init = (component.adapt or {}).get("init")
    starts = {q: joint_start(registry, component, str(codec.identity), q) for q in qualities}
    absent = [q for q, start in starts.items() if start.fallback is not None]
    if not absent:
        return []
    qs = ",".join(str(q) for q in absent)
    what = registry.build("sr", init).training_identity().init.get("name") or (
        "its seeded random initialisation")
    return [f"{init} has no model for codec {codec_name} at q{qs}, so baseline 3 would start "
            f"from {what} there (not blocking); for it to start from baseline 2, first "
            f"`jcsr-bench train-sr --sr {init} --codec {codec_name} --qualities {qs}`"]


def joint_checkpoint_path(registry: Any, component: Any, codec_identity: str, quality: Any,
                          adapt_identity: str | None = None) -> Path:
    """The trained-weights store file of (B3 configuration, start, codec, quality)."""
    start = joint_start(registry, component, codec_identity, quality)
    key = make_identity("esrgan-joint", adapt=adapt_identity or component.adapt_identity,
                        start=start.identity)
    return trained.checkpoint_path(key, codec_identity, quality)


def _start_network(registry: Any, start: JointStart, config: dict[str, Any]) -> nn.Module:
    if start.path is not None:
        return load_rrdbnet(start.path).train()
    if start.fallback is not None:
        instance = registry.resolve("sr", start.fallback)
        return srt.initial_generator(registry, instance, resolve_config(instance.params["adapt"]))
    return srt.initial_generator(registry, registry.resolve("sr", config["init"]),
                             {**config, "init": config["init"]})


# ----------------------------------------------------------------------------- train


def train_joint(registry: Any, sr: str, codec: str, dataset: str | None,
                qualities: Sequence[Any] | None, *, steps: int | None = None,
                batch: int | None = None, patch: int | None = None,
                device: str | torch.device = "auto", resume: bool = False,
                seed: int | None = None, only_missing: bool = False,
                feature_extractor: nn.Module | None = None, progress: bool = True,
                log: Any = print, executor: str = "local", **_ray: Any) -> list[Any]:
    """``train_sr`` for an instance with ``adapt.joint``: one (synthesis, SR) pair per
    quality, written to the trained-weights store (see the module docstring)."""
    if executor != "local":
        raise JcsrError(f"sr.{sr}: joint decoding trains with --executor local only (each "
                        "quality starts from its own models); Ray is not supported for it")
    _, component, _ = srt._adaptive(registry, sr)
    key = component.training_identity(dataset=dataset, steps=steps, batch=batch,
                                      patch=patch, seed=seed)
    config = key.config
    srt._note_overrides(sr, component, key, log)
    codec_component = registry.build("codecs", codec)
    if not offers_latent(codec_component) or not callable(
            getattr(codec_component, "synthesis_module", None)):
        raise JcsrError(f"sr.{sr} decodes from the codec's latent (adapt.joint), and codec "
                        f"{codec!r} offers no latent or trainable synthesis_module(quality); "
                        "train it after a learned codec (compressai)")
    wanted = srt._check_qualities(codec, codec_component, qualities)
    codec_identity = str(codec_component.identity)
    starts = {q: joint_start(registry, component, codec_identity, q) for q in wanted}
    paths = {q: joint_checkpoint_path(registry, component, codec_identity, q, key.identity)
             for q in wanted}
    results, todo = [], []
    for quality in wanted:
        if only_missing and paths[quality].is_file():
            results.append(srt.TrainResult(quality, "exists", paths[quality],
                                           trained.sidecar_path(paths[quality])))
        else:
            todo.append(quality)
    if not todo:
        return results
    dev = resolve_device(device)
    srt._check_requirements(registry, sr, config, codec, codec_component, todo,
                            feature_extractor is None, log)
    if needs_vgg(config) and feature_extractor is None:
        from jcsr_bench.archs.vgg import vgg19_conv54

        feature_extractor = vgg19_conv54()
    dataset_name = str(config["dataset"])
    clean = prepare_pairs(registry.build("datasets", dataset_name), scale=int(config["scale"]),
                          kernel=str(config["kernel"]), limit=config["images"],
                          progress=progress)[None]
    codec_component.to(dev)
    batch_size, hr_patch = int(config["batch"]), int(config["patch"])
    data_seed = int(config["seed"])
    for quality in todo:
        ckpt, start = paths[quality], starts[quality]
        log(start.note)
        data = prepare_latents(clean, codec_component, quality, progress=progress)
        decoder = JointDecoder(codec_component.synthesis_module(quality),
                               _start_network(registry, start, config),
                               MARGIN * data.stride)
        state_path, log_path = ckpt.with_suffix(".state.pth"), ckpt.with_suffix(".log.jsonl")
        result = srt.fit(decoder, data, config, device=dev, state_path=state_path,
                         log_path=log_path, resume=resume or only_missing,
                         feature_extractor=feature_extractor, progress=progress,
                         desc=f"{sr} {codec} q{quality}",
                         sampler=lambda step, data=data: sample_latent_batch(
                             data, batch_size, hr_patch, data_seed, step))
        sidecar = trained.sidecar_path(ckpt)
        if result.status == "interrupted":
            log(f"interrupted at step {result.step}/{config['steps']} (quality {quality}); "
                f"state saved to {state_path}; continue with --resume")
            results.append(srt.TrainResult(quality, "interrupted", ckpt, sidecar, result.step,
                                           result.losses, result.steps_per_s))
            break
        ema = result.ema_state
        checkpoint.atomic_save({
            "params_ema": {k[3:]: v for k, v in ema.items() if k.startswith("sr.")},
            "synthesis": {k[10:]: v for k, v in ema.items() if k.startswith("synthesis.")},
        }, ckpt)
        srt._write_sidecar(sidecar, {
            "sr": sr, "adapt_identity": key.identity, "joint": config["joint"],
            "codec": codec, "codec_identity": codec_identity, "quality": quality,
            "config": config, "trained_from": key.record(),
            "start": {"identity": start.identity, "note": start.note,
                      "from": str(start.path) if start.path else start.fallback},
            "data": {**data.info, "identity": data.identity, "dataset_name": dataset_name},
            "steps": result.step, "final_losses": result.losses,
            "steps_per_s_last_session": None if math.isnan(result.steps_per_s)
            else round(result.steps_per_s, 4),
            "device": str(dev), "harness_version": __version__,
            "training_code_version": TRAINING_CODE_VERSION, "torch_version": torch.__version__,
            "weights": "params_ema (EMA SR network) + synthesis (EMA synthesis transform)",
            "state": str(state_path), "log": str(log_path),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        log(f"q{quality}: {result.step} steps, {result.steps_per_s:.3g} steps/s, "
            f"losses {result.losses} -> {ckpt}")
        results.append(srt.TrainResult(quality, "done", ckpt, sidecar, result.step,
                                       result.losses, result.steps_per_s))
    return results


# ----------------------------------------------------------------------------- evaluate


class JointModel:
    """A trained (synthesis, SR) pair of one codec quality: latent -> HR image."""

    consumes_latent = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.identity = make_identity("esrgan-joint-model",
                                      weights=file_identity(self.path, 64))
        state = load_checkpoint(self.path)
        self._sr = load_rrdbnet(state["params_ema"]).eval()
        self._synthesis_state = state["synthesis"]
        self._synthesis: nn.Module | None = None
        self.scale = int(self._sr.scale)
        self.device = torch.device("cpu")

    def to(self, device: Any) -> JointModel:
        self.device = torch.device(device)
        self._sr.to(self.device)
        if self._synthesis is not None:
            self._synthesis.to(self.device)
        return self

    def upscale(self, image: torch.Tensor) -> torch.Tensor:
        raise JcsrError("a baseline-3 model decodes from the codec's latent, not from a "
                        "decoded image (the work unit hands it the latent)")

    @torch.no_grad()
    def upscale_latent(self, latent: Latent, codec: Any) -> torch.Tensor:
        """The HR image of a latent: the fine-tuned synthesis, then the fine-tuned SR."""
        if self._synthesis is None:
            synthesis = copy.deepcopy(codec.synthesis_module(latent.quality))
            synthesis.load_state_dict(self._synthesis_state)
            self._synthesis = synthesis.eval().to(self.device)
        x = self._synthesis(latent.y.to(self.device))
        (top, left), (h, w) = latent.offset, latent.size
        x = x[..., top : top + h, left : left + w].clamp(0, 1)
        out = self._sr(x)
        return out[0].mul(255).clamp(0, 255).round().to(torch.uint8).cpu()
