"""The plugin manager: built-ins, entry-point plugins, error isolation.

Built-in plugins register through the same hooks as third-party ones. A third-party
plugin that fails to import, or whose hook raises, is reported once (distribution and
error) and skipped, unless ``JCSR_BENCH_STRICT_PLUGINS=1`` makes that fatal.
``JCSR_BENCH_LOAD_PLUGINS`` is an allow-list of distribution names ("" loads none).
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from jcsr_bench import hookspecs
from jcsr_bench.kit.errors import PluginError

KINDS = {
    "codecs": "register_codecs",
    "sr": "register_sr_models",
    "datasets": "register_datasets",
    "metrics": "register_metrics",
}

BUILTIN_MODULES = (
    "jcsr_bench_plugins.codecs",
    "jcsr_bench_plugins.sr",
    "jcsr_bench_plugins.datasets",
    "jcsr_bench_plugins.metrics",
)
BUILTIN_SOURCE = "jcsr-bench (built-in)"
TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: What a ``params`` schema may name: the types ``yaml.safe_load`` produces.
PARAM_TYPES = (str, int, float, bool, list, dict)


class PluginLoadWarning(UserWarning):
    """A third-party plugin failed to load and was skipped."""


@dataclass(frozen=True)
class Registration:
    """One registered component type."""

    kind: str
    name: str
    factory: Callable[..., Any]
    source: str  # plugin name, "jcsr-bench (built-in)" for built-ins
    description: str = ""
    params: dict[str, Any] | None = None  # optional schema: key -> type or tuple of types
    opt_in: bool = False  # a metric computed only when named (--metrics, a suite, a preset)


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadError:
    plugin: str
    distribution: str
    error: str


def strict_plugins() -> bool:
    return os.environ.get("JCSR_BENCH_STRICT_PLUGINS", "").strip().lower() in {
        "1", "true", "yes", "on"
    }


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _allowed_distributions() -> set[str] | None:
    """None = load every installed plugin; a set = load only those distributions."""
    value = os.environ.get("JCSR_BENCH_LOAD_PLUGINS")
    if value is None:
        return None
    return {_normalise(d) for d in re.split(r"[,\s]+", value) if d.strip()}


def _check_params(kind: str, name: str, params: Any) -> None:
    """``params`` maps registry keys to a type YAML produces, or a tuple of them."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise PluginError(f"params of {kind} type {name!r} must be a dict of key -> type, "
                          f"got {type(params).__name__}")
    for key, expected in params.items():
        options = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(key, str) or not options or any(t not in PARAM_TYPES
                                                          for t in options):
            allowed = ", ".join(t.__name__ for t in PARAM_TYPES)
            raise PluginError(
                f"params[{key!r}] of {kind} type {name!r} is {expected!r}: a registry value "
                f"is checked against one of {allowed} (the types YAML produces) or a tuple "
                "of them, e.g. (int, float)"
            )


class PluginManager:
    """Collects component types from built-in and third-party plugins."""

    def __init__(self, *, entry_points: bool = True, extra_plugins: tuple[Any, ...] = ()):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._dist: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self.errors: list[LoadError] = []
        self._types: dict[str, dict[str, Registration]] | None = None
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        self._registered_by: dict[str, dict[str, list[str]]] = {}
        from jcsr_bench.kit.version import __version__

        for module_name in BUILTIN_MODULES:
            self._pm.register(importlib.import_module(module_name), name=module_name)
            self._dist[module_name] = ("jcsr-bench", __version__)
        for index, plugin in enumerate(extra_plugins):
            name = getattr(plugin, "__name__", None) or f"test-plugin-{index}"
            self._pm.register(plugin, name=name)
            self._dist[name] = ("(registered in-process)", "")
        if entry_points:
            self._load_entry_points()

    # -- loading ---------------------------------------------------------------------
    def _fail(self, plugin: str, distribution: str, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if strict_plugins():
            raise PluginError(
                f"plugin {plugin!r} from distribution {distribution!r} failed: {text} "
                "(JCSR_BENCH_STRICT_PLUGINS is set, so this is fatal)"
            )
        self.errors.append(LoadError(plugin, distribution, text))
        warnings.warn(
            f"jcsr-bench: skipping plugin {plugin!r} from {distribution!r}: {text}",
            PluginLoadWarning,
            stacklevel=3,
        )

    def _load_entry_points(self) -> None:
        allowed = _allowed_distributions()
        for ep in metadata.entry_points(group=hookspecs.PROJECT_NAME):
            dist = ep.dist.name if ep.dist is not None else "(unknown distribution)"
            version = ep.dist.version if ep.dist is not None else ""
            if allowed is not None and _normalise(dist) not in allowed:
                continue
            if self._pm.get_plugin(ep.name) is not None or ep.name in self._dist:
                continue
            try:
                plugin = ep.load()
                self._pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not take the tool down
                self._fail(ep.name, dist, exc)
                continue
            self._dist[ep.name] = (dist, version)

    # -- types -----------------------------------------------------------------------
    def _collect(self) -> dict[str, dict[str, Registration]]:
        types: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        for kind, hook_name in KINDS.items():
            hook = getattr(self._pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                plugin = self._pm.get_name(impl.plugin)
                source = self._source(plugin)
                pending: list[Registration] = []

                def register(
                    name: str,
                    factory: Callable[..., Any],
                    *,
                    description: str = "",
                    params: dict[str, Any] | None = None,
                    opt_in: bool = False,
                    _kind: str = kind,
                    _source: str = source,
                    _pending: list[Registration] = pending,
                ) -> None:
                    if not isinstance(name, str) or not TYPE_NAME.match(name):
                        raise PluginError(
                            f"invalid {_kind} type name {name!r}: use letters, digits, "
                            "'.', '_', '+', '-'"
                        )
                    if not callable(factory):
                        raise PluginError(f"factory for {_kind} type {name!r} is not callable")
                    _check_params(_kind, name, params)
                    _pending.append(
                        Registration(_kind, name, factory, _source, description, params,
                                     bool(opt_in))
                    )

                try:
                    impl.function(register=register)
                except Exception as exc:  # isolate the failing hook
                    dist = self._dist.get(plugin, ("?", ""))[0]
                    if plugin in self._dist and self._dist[plugin][0] == "jcsr-bench":
                        raise
                    self._fail(plugin, dist, exc)
                    continue
                for reg in pending:
                    self._add(types, reg, plugin)
        for kind, name in self._conflicts:
            types[kind].pop(name, None)
        return types

    def _add(self, types: dict[str, dict[str, Registration]], reg: Registration, plugin: str):
        existing = types[reg.kind].get(reg.name)
        if existing is not None or (reg.kind, reg.name) in self._conflicts:
            sources = self._conflicts.setdefault(
                (reg.kind, reg.name), [existing.source] if existing else []
            )
            sources.append(reg.source)
            message = (
                f"{reg.kind} type {reg.name!r} is registered by both "
                f"{' and '.join(repr(s) for s in sources)}"
            )
            if strict_plugins():
                raise PluginError(message)
            self.errors.append(LoadError(plugin, reg.source, message))
            warnings.warn(f"jcsr-bench: {message}", PluginLoadWarning, stacklevel=3)
            return
        types[reg.kind][reg.name] = reg
        self._registered_by.setdefault(plugin, {}).setdefault(reg.kind, []).append(reg.name)

    def _source(self, plugin: str) -> str:
        dist, _ = self._dist.get(plugin, ("", ""))
        return BUILTIN_SOURCE if dist == "jcsr-bench" else (dist or plugin)

    def types(self, kind: str) -> dict[str, Registration]:
        """All usable types of one kind ('codecs', 'sr', 'datasets', 'metrics')."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
        if self._types is None:
            self._types = self._collect()
        return self._types[kind]

    def get(self, kind: str, name: str) -> Registration:
        """The registration of one type; a clear error when unknown or ambiguous."""
        types = self.types(kind)
        if name in types:
            return types[name]
        if (kind, name) in self._conflicts:
            both = " and ".join(repr(s) for s in self._conflicts[(kind, name)])
            raise PluginError(
                f"{kind} type {name!r} is registered by both {both}; uninstall one, or limit "
                "third-party plugins with JCSR_BENCH_LOAD_PLUGINS"
            )
        from jcsr_bench.kit.suggest import did_you_mean

        raise PluginError(f"unknown {kind} type {name!r}.{did_you_mean(name, types)}")

    def plugins(self, *, include_builtins: bool = False) -> list[PluginInfo]:
        """What each loaded plugin is and registered (for ``jcsr-bench plugins``)."""
        for kind in KINDS:
            self.types(kind)
        infos = []
        for name, plugin in self._pm.list_name_plugin():
            dist, version = self._dist.get(name, ("", ""))
            builtin = dist == "jcsr-bench"
            if builtin and not include_builtins:
                continue
            hooks = sorted(
                h.name for h in self._pm.get_hookcallers(plugin) or [] if h.name in KINDS.values()
            )
            infos.append(
                PluginInfo(name, dist, version, builtin, hooks, self._registered_by.get(name, {}))
            )
        return infos


_MANAGER: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (built on first use)."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = PluginManager()
    return _MANAGER


def set_plugin_manager(manager: PluginManager | None) -> PluginManager | None:
    """Replace the process-wide manager (tests); returns the previous one."""
    global _MANAGER
    previous, _MANAGER = _MANAGER, manager
    return previous
