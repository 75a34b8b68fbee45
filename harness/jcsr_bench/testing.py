"""Conformance kit for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

Call these from your own tests::

    from jcsr_bench.testing import check_codec, plugin_manager

    def test_my_codec():
        check_codec(MyCodec(quality_ladder=[1, 2]))

    def test_my_plugin_registers():
        with plugin_manager(my_plugin_module) as manager:
            assert "my-codec" in manager.types("codecs")

Each check raises ``ConformanceError`` (an ``AssertionError``) naming the component and
the broken rule of the contract (docs/plugins.md). Every check also requires that the
component pickles (``--executor ray`` ships components to worker processes).
``check_named`` checks registered components by name, for ``jcsr-bench check``.
``assert_no_regression`` fails a test when a run's RD curves regressed against a saved
baseline.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from jcsr_bench.components import NotApplicable, offers_latent
from jcsr_bench.imaging import images
from jcsr_bench.kit.errors import DataError, JcsrError
from jcsr_bench.plugin.manager import KINDS, PluginManager, set_plugin_manager


class ConformanceError(AssertionError):
    """A component breaks the plugin contract."""


def sample_image(height: int = 64, width: int = 96, seed: int = 0) -> torch.Tensor:
    """A deterministic, non-square 8-bit RGB test image: smooth gradients plus texture."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height).view(1, height, 1)
    x = torch.linspace(0, 1, width).view(1, 1, width)
    base = torch.cat([y * x.expand(1, height, width), (1 - y) * x, y * (1 - x)], 0)
    noise = torch.rand(3, height, width, generator=generator) * 0.15
    return ((base * 0.85 + noise).clamp(0, 1) * 255).round().to(torch.uint8)


def _name(component: Any) -> str:
    return f"{type(component).__name__}({getattr(component, 'identity', '?')!r})"


def _require(condition: bool, component: Any, message: str) -> None:
    if not condition:
        raise ConformanceError(f"{_name(component)}: {message}")


def check_image(image: Any, *, what: str = "image", shape: Sequence[int] | None = None) -> None:
    """An image crossing a stage boundary: torch.uint8, [3, H, W], CPU, optionally a shape."""
    try:
        images.check_image(image, what, shape)
    except DataError as exc:
        raise ConformanceError(str(exc)) from None
    if image.device.type != "cpu":
        raise ConformanceError(f"{what} must be on the CPU, got {image.device}")


def _check_identity(component: Any) -> str:
    identity = getattr(component, "identity", None)
    _require(isinstance(identity, str) and identity.strip() != "", component,
             "`identity` must be a non-empty string that changes whenever the output could")
    check_pickles(component)
    return identity


def check_pickles(component: Any) -> None:
    """The component survives ``pickle`` with its identity (``--executor ray`` sends
    components to worker processes; a lambda or an open file handle inside fails)."""
    try:
        copy = pickle.loads(pickle.dumps(component))
    except Exception as exc:  # noqa: BLE001 - any failure to pickle is the finding
        raise ConformanceError(f"{_name(component)}: must pickle for --executor ray (Ray "
                               f"sends components to worker processes): {exc}") from None
    if getattr(component, "identity", None) is not None:
        _require(getattr(copy, "identity", None) == component.identity, component,
                 "`identity` changed across pickling")


def check_codec(codec: Any, image: torch.Tensor | None = None,
                qualities: Sequence[Any] | None = None) -> None:
    """Types, round trip at each checked quality, determinism, identity stability,
    and a clear exception (not a crash or hang) for a corrupt payload and a bad quality.
    A codec offering its latent must give ``synthesize(decode_latent(p)) == decode(p)``."""
    image = sample_image() if image is None else image
    check_image(image, what="the test image")
    identity = _check_identity(codec)
    ladder = list(getattr(codec, "qualities", None) or [])
    _require(len(ladder) > 0, codec, "`qualities` must be a non-empty list (the default ladder)")
    checked = list(qualities) if qualities is not None else sorted({ladder[0], ladder[-1]},
                                                                   key=ladder.index)
    original = image.clone()
    for quality in checked:
        payload = codec.encode(image, quality)
        _require(isinstance(payload, bytes) and len(payload) > 0, codec,
                 f"encode(image, {quality!r}) must return non-empty bytes, got "
                 f"{type(payload).__name__}")
        _require(torch.equal(image, original), codec, "encode must not modify its input image")
        decoded = codec.decode(payload)
        try:
            check_image(decoded, what=f"decode(...) at quality {quality!r}", shape=image.shape)
        except ConformanceError as exc:
            raise ConformanceError(f"{_name(codec)}: {exc}") from None
        _require(codec.encode(image, quality) == payload, codec,
                 f"encode is not deterministic at quality {quality!r}")
        _require(torch.equal(codec.decode(payload), decoded), codec,
                 f"decode is not deterministic at quality {quality!r}")
        if offers_latent(codec):
            _check_latent(codec, payload, decoded, quality)
        if hasattr(codec, "reconstruct"):
            recon = codec.reconstruct(image, quality)
            try:
                check_image(recon, what=f"reconstruct(...) at quality {quality!r}",
                            shape=image.shape)
            except ConformanceError as exc:
                raise ConformanceError(f"{_name(codec)}: {exc}") from None
    _require(codec.identity == identity, codec, "`identity` changed while the codec was used")
    _expect_error(codec, lambda: codec.decode(b"\x00not a payload\xff" * 3),
                  "decode of a corrupt payload")
    bad = _bad_quality(ladder)
    _expect_error(codec, lambda: codec.encode(image, bad),
                  f"encode at quality {bad!r}, which is outside the ladder")


def _check_latent(codec: Any, payload: bytes, decoded: torch.Tensor, quality: Any) -> None:
    latent = codec.decode_latent(payload)
    y = getattr(latent, "y", None)
    _require(isinstance(y, torch.Tensor) and y.dim() == 4 and y.dtype == torch.float32,
             codec, f"decode_latent(...) at quality {quality!r} must return a Latent whose "
             "`y` is a float32 [1, C, h, w] tensor")
    synthesized = codec.synthesize(latent)
    _require(isinstance(synthesized, torch.Tensor) and torch.equal(synthesized, decoded), codec,
             f"synthesize(decode_latent(p)) differs from decode(p) at quality {quality!r}")
    _require(torch.equal(codec.decode_latent(payload).y, y), codec,
             f"decode_latent is not deterministic at quality {quality!r}")


def _bad_quality(ladder: Sequence[Any]) -> Any:
    numbers = [q for q in ladder if isinstance(q, (int, float)) and not isinstance(q, bool)]
    return max(numbers) + 1000 if numbers else "not-a-quality"


def _expect_error(component: Any, call: Any, what: str) -> None:
    try:
        call()
    except Exception:
        return
    raise ConformanceError(f"{_name(component)}: {what} must raise a clear exception")


def check_sr_model(model: Any, image: torch.Tensor | None = None) -> None:
    """Scale, output shape and type, determinism, input left untouched, identity stability.

    Adaptive models must be resolved first: ``check_sr_model(model.for_codec(id, q))``.
    """
    image = sample_image(24, 32) if image is None else image
    check_image(image, what="the test image")
    identity = _check_identity(model)
    scale = getattr(model, "scale", None)
    _require(isinstance(scale, int) and not isinstance(scale, bool) and scale >= 1, model,
             f"`scale` must be a positive int, got {scale!r}")
    original = image.clone()
    out = model.upscale(image)
    try:
        check_image(out, what="upscale(image)",
                    shape=(3, image.shape[1] * scale, image.shape[2] * scale))
    except ConformanceError as exc:
        raise ConformanceError(f"{_name(model)}: {exc}") from None
    _require(torch.equal(image, original), model, "upscale must not modify its input image")
    _require(torch.equal(model.upscale(image), out), model, "upscale is not deterministic")
    _require(model.identity == identity, model, "`identity` changed while the model was used")


def check_dataset(dataset: Any, *, limit: int = 3) -> None:
    """Length, (name, image) items, unique names, repeatable iteration, stable identity."""
    identity = _check_identity(dataset)
    length = len(dataset)
    _require(isinstance(length, int) and length >= 0, dataset, "len() must be an int >= 0")
    names: list[str] = []
    first: list[torch.Tensor] = []
    for index, item in enumerate(dataset):
        _require(isinstance(item, tuple) and len(item) == 2, dataset,
                 f"items must be (name, image) pairs, got {type(item).__name__}")
        name, image = item
        _require(isinstance(name, str) and name != "", dataset, f"name must be a str: {name!r}")
        names.append(name)
        if index < limit:
            try:
                check_image(image, what=f"image {name!r}")
            except ConformanceError as exc:
                raise ConformanceError(f"{_name(dataset)}: {exc}") from None
            first.append(image)
    _require(len(names) == length, dataset,
             f"len() is {length} but iteration yielded {len(names)} items")
    _require(len(set(names)) == len(names), dataset, "image names must be unique")
    again = [(name, image) for (name, image), _ in zip(dataset, range(limit))]
    _require([n for n, _ in again] == names[: len(again)], dataset,
             "iteration order must be repeatable")
    for (name, image), previous in zip(again, first):
        _require(torch.equal(image, previous), dataset, f"image {name!r} changed between reads")
    _require(dataset.identity == identity, dataset, "`identity` changed between reads")


def check_metric(metric: Any, image: torch.Tensor | None = None) -> None:
    """Name, direction, a float (or NotApplicable) that is deterministic and sane."""
    image = sample_image(32, 48) if image is None else image
    name = getattr(metric, "name", None)
    if not isinstance(name, str) or not name:
        raise ConformanceError(f"{type(metric).__name__}: `name` must be a non-empty string")
    check_pickles(metric)
    if not isinstance(getattr(metric, "higher_is_better", None), bool):
        raise ConformanceError(f"metric {name!r}: `higher_is_better` must be a bool")
    other = sample_image(image.shape[1], image.shape[2], seed=1)
    try:
        value = metric.compute(image, other)
    except NotApplicable:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise ConformanceError(f"metric {name!r}: compute must return a float, got {value!r}")
    if metric.compute(image, other) != value:
        raise ConformanceError(f"metric {name!r}: compute is not deterministic")


def check_plugin(plugin: Any) -> dict[str, list[str]]:
    """Load ``plugin`` (a module or object with hookimpls) next to the built-ins and check
    its registrations; returns what it registered per kind."""
    manager = PluginManager(entry_points=False, extra_plugins=(plugin,))
    registered: dict[str, list[str]] = {}
    for kind in KINDS:
        for name, registration in manager.types(kind).items():
            if registration.source == getattr(plugin, "__name__", None) or (
                registration.source == "(registered in-process)"
            ):
                registered.setdefault(kind, []).append(name)
    if manager.errors:
        raise ConformanceError("; ".join(error.error for error in manager.errors))
    if not registered:
        raise ConformanceError(f"plugin {plugin!r} registered nothing")
    return registered


CHECKS = {"codecs": check_codec, "sr": check_sr_model, "datasets": check_dataset,
          "metrics": check_metric}
KIND_WORDS = {"codecs": "codec", "sr": "sr", "datasets": "dataset", "metrics": "metric"}


def check_named(registry: Any, name: str) -> list[tuple[str, str, str]]:
    """Check what ``name`` names: every type a plugin of that name (or distribution)
    registered, else each registry instance or type called ``name``. Returns
    ``(kind, component name, problem)`` per component, the problem ``""`` when it
    conforms; raises ``JcsrError`` when nothing is called ``name``."""
    targets: list[tuple[str, str]] = []
    for info in registry.manager.plugins(include_builtins=True):
        if name in (info.name, info.distribution):
            targets += [(kind, t) for kind, types in info.registered.items() for t in types]
    if not targets:
        for kind in KINDS:
            with contextlib.suppress(JcsrError):
                registry.resolve(kind, name)
                targets.append((kind, name))
    if not targets:
        from jcsr_bench.kit.suggest import did_you_mean

        known = [info.name for info in registry.manager.plugins(include_builtins=True)]
        known += [n for kind in KINDS for n in (*registry.instances(kind),
                                                 *registry.manager.types(kind))]
        raise JcsrError(f"no plugin, registry instance or type is called {name!r}."
                        f"{did_you_mean(name, known)} `jcsr-bench plugins` and `jcsr-bench "
                        "list` show them")
    results = []
    for kind, target in targets:
        word = KIND_WORDS.get(kind, kind)
        try:
            component = registry.build(kind, target)
        except JcsrError as exc:
            results.append((word, target, f"could not be built: {exc}"))
            continue
        if kind == "sr" and callable(getattr(component, "for_codec", None)):
            results.append((word, target, "adaptive: check a trained model with "
                            "check_sr_model(model.for_codec(codec_identity, quality))"))
            continue
        try:
            CHECKS[kind](component)
        except AssertionError as exc:
            results.append((word, target, str(exc)))
        else:
            results.append((word, target, ""))
    return results


@contextlib.contextmanager
def plugin_manager(*plugins: Any) -> Iterator[PluginManager]:
    """Make a manager with the built-ins plus ``plugins`` (no installed entry points) the
    process-wide one for the duration of the block -- for tests that need a plugin."""
    manager = PluginManager(entry_points=False, extra_plugins=plugins)
    previous = set_plugin_manager(manager)
    try:
        yield manager
    finally:
        set_plugin_manager(previous)


class RegressionError(AssertionError):
    """Results regressed against a baseline (or cannot be compared with it)."""


def assert_no_regression(results: Any, baseline: Any, *, max_bd_rate: float = 0.5,
                         max_quality_drop: float = 0.02, exact: bool = False,
                         fail_on_time: float | None = None) -> Any:
    """Fail a plugin author's test when ``results`` regressed against ``baseline``.

    ``results`` and ``baseline`` are results folders, baseline JSON files (``jcsr-bench
    baseline save``) or already loaded baseline data. Tolerances as ``jcsr-bench
    compare`` (BD-rate in percentage points, quality drop in the metric's units).
    Raises :class:`RegressionError` with the Markdown report when the comparison's exit
    status is not 0 (regression, incomparable, removed); returns the comparison.
    """
    from jcsr_bench.ci.baseline import load_baseline
    from jcsr_bench.ci.compare import Tolerances, compare
    from jcsr_bench.ci.compare_report import render_compare

    def data(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else load_baseline(value)

    comparison = compare(data(baseline), data(results), tolerances=Tolerances(
        max_bd_rate=max_bd_rate, max_quality_drop=max_quality_drop, exact=exact,
        fail_on_time=fail_on_time))
    if comparison.exit_code != 0:
        raise RegressionError(render_compare(comparison, markdown=False))
    return comparison
