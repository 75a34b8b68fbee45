"""Adaptive-SR training configuration: the registry's ``adapt`` section, presets, defaults.

An SR instance with an ``adapt`` section (``esrgan-b2``) is trained once per (codec,
quality). Every key is optional; the preset fills what is not given:

``init``               SR instance whose weights initialise the generator (``esrgan-b1``);
                       absent -> random init with the instance's ``arch`` (from scratch).
``preset``             ``esrgan`` (the published recipe, default) or ``cpu`` (a tiny run
                       from scratch that needs no download: its GAN stage has no VGG19).
``steps``              total generator updates per quality (the L1 stage included).
``l1_steps``           first steps that are a PSNR-oriented L1 stage (pixel L1 only,
                       learning rate ``l1_lr``); 0 = straight to the GAN stage.
``l1_lr``              learning rate during the L1 stage.
``batch``, ``patch``   batch size and HR patch size (LR patch = patch / scale).
``lr``, ``betas``      Adam for generator and discriminator in the GAN stage.
``milestones``, ``gamma``  MultiStepLR for both optimisers, counted in GAN-stage steps
                       (as BasicSR's separate GAN run counts them): a milestone at or
                       beyond ``steps - l1_steps`` never fires, and training warns.
``ema``                decay of the exponential moving average of the generator; the
                       EMA weights are what is written to the trained-weights store.
                       From ``init`` weights the decay is constant (BasicSR); from random
                       init it warms up as ``min(ema, (1 + step) / (10 + step))``, so the
                       saved model holds no trace of the random start.
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
``joint``              ``synthesis``: baseline 3, joint decoding -- the codec's synthesis
                       transform is fine-tuned with the SR network from the latent
                       (``jcsr_bench.training.joint``); ``init`` then names baseline 2's
                       instance, ``augment`` is off (a flipped latent is not a flipped
                       image) and ``patch`` must be a multiple of 64 (x4, 16x latent).

With ``perceptual_weight`` and ``gan_weight`` both 0, or when every step is in the L1
stage, neither VGG19 nor a discriminator is built.
"""

from __future__ import annotations

from typing import Any

from jcsr_bench.kit.errors import RegistryError
from jcsr_bench.kit.suggest import did_you_mean

# The ESRGAN GAN stage as BasicSR configures it (docs/sr-and-baseline-2.md).
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

# Small enough to finish on a laptop CPU in minutes (pair it with a small ``arch``), and
# offline: the GAN stage is L1 + RaGAN without VGG19's perceptual loss (whose weights
# would have to be downloaded); with no perceptual term, L1 keeps weight 1 so that the
# adversarial term (5e-3, as ESRGAN) refines rather than replaces the L1 stage's model.
CPU: dict[str, Any] = {
    **ESRGAN,
    "steps": 200,
    "l1_steps": 100,
    "batch": 4,
    "patch": 64,
    "milestones": [50],  # GAN-stage steps: halfway through its 100
    # about a 10-step average: a longer one trails a model that still improves at step
    # 200 (0.99 saved 0.1-0.7 dB below the raw generator on samples-test, 0.9 0.05-0.24)
    "ema": 0.9,
    "perceptual_weight": 0.0,
    "pixel_weight": 1.0,
    "disc_width": 16,
    "checkpoint_every": 50,
    "log_every": 10,
    "images": 32,
}

PRESETS: dict[str, dict[str, Any]] = {"esrgan": ESRGAN, "cpu": CPU}
META_KEYS = {"init", "preset"}
JOINT = ("synthesis",)  # what joint decoding fine-tunes besides SR
KNOWN_KEYS = set(ESRGAN) | META_KEYS | {"joint"}


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
    if "joint" in config:  # present only for baseline 3: B2's keys stay as they were
        if config["joint"] not in JOINT:
            raise RegistryError(f"adapt.joint: expected one of {list(JOINT)}, found "
                                f"{config['joint']!r}.")
        if adapt.get("augment"):
            raise RegistryError("adapt.augment: joint decoding trains without flips (a "
                                "flipped latent is not the latent of a flipped image); "
                                "drop it.")
        config["augment"] = False
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
    milestones = config["milestones"]
    if (not isinstance(milestones, list)
            or not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1
                       for m in milestones)
            or milestones != sorted(set(milestones))):
        raise bad("milestones", "expected increasing positive integers (GAN-stage steps)")
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


def unreached_milestones(config: dict[str, Any]) -> str | None:
    """Why some learning-rate milestones never fire, or None when all of them do.

    The schedulers step once per GAN-stage step, so a milestone counts GAN-stage steps;
    one at or beyond the stage's length changes no update (a training-length override
    such as ``--steps`` often causes this, so it is a warning, not an error).
    """
    gan_steps = config["steps"] - config["l1_steps"]
    late = [m for m in config["milestones"] if m >= gan_steps]
    if gan_steps <= 0 or not late:
        return None
    return (
        f"adapt.milestones {late} never fire: the learning-rate schedulers count only "
        f"GAN-stage steps, and this GAN stage has {gan_steps} (steps {config['steps']} - "
        f"l1_steps {config['l1_steps']}); give milestones below {gan_steps} (or [] for none)."
    )


def ema_decay(config: dict[str, Any], step: int) -> float:
    """The EMA decay used after update ``step`` (0-based); see ``ema`` above.

    Fine-tuning (``init`` given) keeps BasicSR's constant decay: the average starts from
    trained weights. From random init a constant 0.99 would still hold 0.99^200 = 13 %
    of the random start after 200 steps, so the decay ramps up (TensorFlow's
    ``ExponentialMovingAverage(num_updates=...)`` rule) and the average follows the
    trained weights from the first steps on.
    """
    decay = float(config["ema"])
    if config.get("init"):
        return decay
    return min(decay, (1.0 + step) / (10.0 + step))


def needs_gan_stage(config: dict[str, Any]) -> bool:
    """True when some steps run the GAN stage (so D and maybe VGG19 are needed)."""
    return config["steps"] > config["l1_steps"]


def needs_vgg(config: dict[str, Any]) -> bool:
    return needs_gan_stage(config) and float(config["perceptual_weight"]) > 0


def needs_discriminator(config: dict[str, Any]) -> bool:
    return needs_gan_stage(config) and float(config["gan_weight"]) > 0
