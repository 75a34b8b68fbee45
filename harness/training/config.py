"""Adaptive-SR training configuration: the registry's ``adapt`` section, presets, defaults.

An SR instance with an ``adapt`` section (``esrgan-b2``) is trained once per (codec,
quality). Every key is optional; the preset fills what is not given:

``init``               SR instance whose weights initialise the generator (``esrgan-b1``);
                       absent -> random init with the instance's ``arch`` (from scratch).
``preset``             ``esrgan`` (the published recipe, default) or ``cpu`` (tiny run).
``steps``              total generator updates per quality (the L1 stage included).
``l1_steps``           first steps that are a PSNR-oriented L1 stage (pixel L1 only,
                       learning rate ``l1_lr``); 0 = straight to the GAN stage.
``l1_lr``              learning rate during the L1 stage.
``batch``, ``patch``   batch size and HR patch size (LR patch = patch / scale).
``lr``, ``betas``      Adam for generator and discriminator in the GAN stage.
``milestones``, ``gamma``  MultiStepLR (per GAN-stage step) for both optimisers.
``ema``                decay of the exponential moving average of the generator; the
                       EMA weights are what is written to the trained-weights store.
``perceptual_weight``  VGG19 conv5_4 (before ReLU) L1 feature loss weight.
``gan_weight``         lambda, relativistic-average GAN loss weight.
``pixel_weight``       eta, L1 pixel loss weight in the GAN stage.
``disc_width``         discriminator base width (64 in ESRGAN).
``augment``            random flips / 90-degree rotations of the aligned pairs.
``checkpoint_every``   steps between resumable training-state checkpoints.
``log_every``          steps between lines of the JSONL loss log.
``seed``               seeds data order and initialisation (``--seed`` overrides).
``scale``, ``kernel``  downsampling used to make the LR inputs (as the evaluation: x4,
                       MATLAB bicubic).
``dataset``            training dataset instance (``--dataset`` overrides; default df2k).
``images``             use only the first N images of the dataset (null = all).

With ``perceptual_weight`` and ``gan_weight`` both 0, or when every step is in the L1
stage, neither VGG19 nor a discriminator is built.
"""

from __future__ import annotations

from typing import Any

from jcsr_bench.errors import RegistryError
from jcsr_bench.suggest import did_you_mean

# The ESRGAN GAN stage as BasicSR configures it (REFERENCE.md).
ESRGAN: dict[str, Any] = {
    "steps": 400_000,
    "l1_steps": 0,
    "l1_lr": 2e-4,
    "batch": 16,
    "patch": 128,
    "lr": 1e-4,
    "betas": [0.9, 0.99],
    "milestones": [50_000, 100_000, 200_000, 300_000],
    "gamma": 0.5,
    "ema": 0.999,
    "perceptual_weight": 1.0,
    "gan_weight": 5e-3,
    "pixel_weight": 1e-2,
    "disc_width": 64,
    "augment": True,
    "checkpoint_every": 5_000,
    "log_every": 100,
    "seed": 0,
    "scale": 4,
    "kernel": "matlab",
    "dataset": "df2k",
    "images": None,
}

# Small enough to finish on a laptop CPU in minutes (pair it with a small ``arch``).
CPU: dict[str, Any] = {
    **ESRGAN,
    "steps": 200,
    "l1_steps": 100,
    "batch": 4,
    "patch": 64,
    "milestones": [150],
    "ema": 0.99,
    "disc_width": 16,
    "checkpoint_every": 50,
    "log_every": 10,
    "images": 32,
}

PRESETS: dict[str, dict[str, Any]] = {"esrgan": ESRGAN, "cpu": CPU}
META_KEYS = {"init", "preset"}
KNOWN_KEYS = set(ESRGAN) | META_KEYS


def resolve_config(adapt: dict[str, Any] | None, **overrides: Any) -> dict[str, Any]:
    """The full training config: preset, then the ``adapt`` keys, then non-None overrides.

    Unknown keys are an error (a typo would otherwise silently train with a default).
    """
    adapt = dict(adapt or {})
    preset_name = adapt.get("preset") or "esrgan"
    if preset_name not in PRESETS:
        raise RegistryError(
            f"adapt.preset: unknown preset {preset_name!r}.{did_you_mean(preset_name, PRESETS)}"
            f" Presets: {', '.join(PRESETS)}."
        )
    for key in adapt:
        if key not in KNOWN_KEYS:
            raise RegistryError(
                f"adapt: unknown key {key!r}.{did_you_mean(key, KNOWN_KEYS)} Allowed keys: "
                f"{', '.join(sorted(KNOWN_KEYS))} (see jcsr_bench.training.config)."
            )
    config = {**PRESETS[preset_name], **{k: v for k, v in adapt.items() if k not in META_KEYS}}
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["preset"] = preset_name
    config["init"] = adapt.get("init")
    _check(config)
    return config


def _check(config: dict[str, Any]) -> None:
    def bad(key: str, why: str) -> RegistryError:
        return RegistryError(f"adapt.{key}: {why}, found {config[key]!r}.")

    for key in ("steps", "batch", "patch", "checkpoint_every", "log_every", "scale"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise bad(key, "expected a positive integer")
    if config["images"] is not None and (not isinstance(config["images"], int)
                                         or config["images"] < 1):
        raise bad("images", "expected a positive integer or null")
    if not isinstance(config["l1_steps"], int) or config["l1_steps"] < 0:
        raise bad("l1_steps", "expected an integer >= 0")
    if config["patch"] % config["scale"]:
        raise bad("patch", f"the HR patch must be a multiple of the scale {config['scale']}")
    if not 0.0 <= float(config["ema"]) < 1.0:
        raise bad("ema", "expected a decay in [0, 1)")
    if len(config["betas"]) != 2:
        raise bad("betas", "expected two numbers")
    for key in ("perceptual_weight", "gan_weight", "pixel_weight", "lr", "l1_lr", "gamma"):
        if float(config[key]) < 0:
            raise bad(key, "expected a number >= 0")
    weights = ("perceptual_weight", "gan_weight", "pixel_weight")
    if needs_gan_stage(config) and not any(float(config[k]) > 0 for k in weights):
        raise RegistryError(
            "adapt: the GAN stage (steps beyond l1_steps) has every loss weight at 0 "
            f"({', '.join(weights)}); give one a positive weight or set l1_steps = steps."
        )


def needs_gan_stage(config: dict[str, Any]) -> bool:
    """True when some steps run the GAN stage (so D and maybe VGG19 are needed)."""
    return config["steps"] > config["l1_steps"]


def needs_vgg(config: dict[str, Any]) -> bool:
    return needs_gan_stage(config) and float(config["perceptual_weight"]) > 0


def needs_discriminator(config: dict[str, Any]) -> bool:
    return needs_gan_stage(config) and float(config["gan_weight"]) > 0
