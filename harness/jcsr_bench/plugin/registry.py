"""registry.yaml: named, configured instances of plugin types, validated with line numbers.

A plugin provides a *type* ("compressai", "pillow", "esrgan"); the registry names
*instances* of those types with parameters ("bmshj", "jpeg", "esrgan-b1"), and these
names are what users type. The shipped registry is extended by user registries (same
names override). Errors name the file, line, entry and key, with "did you mean".

A registry is data from wherever the user stands (``./jcsr-bench.yaml`` is picked up
automatically), so what it may expand to is bounded: YAML aliases that would expand
past ``MAX_VALUES`` values (an alias bomb) or refer to themselves are refused, so are
files that are not regular files (``/dev/zero``, a FIFO) or are larger than
``MAX_BYTES``, before they are read; the files loaded are recorded (``Registry.files``)
for the run to announce.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jcsr_bench.kit.errors import JcsrError, PluginError, RegistryError
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.plugin.manager import KINDS, PluginManager, get_plugin_manager

SHIPPED = Path(__file__).with_name("registry.yaml")
PROJECT_LOCAL = "jcsr-bench.yaml"  # picked up from the working directory when present
SECTIONS = (*KINDS, "suites", "presets")
COMMON_KEYS = {"type", "description"}
SUITE_KEYS = {"description": str, "datasets": list, "codecs": list, "sr": list,
              "anchor": dict, "qualities": dict, "tolerances": dict, "metrics": list}
MAX_VALUES = 100_000  # YAML values a registry may hold once aliases are expanded
MAX_BYTES = 1_000_000  # bytes a registry file may have (the shipped one is a few KB)
ORIGINS = {"shipped": "shipped", "local": "from the current folder", "extra": "--registry"}
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
              list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class Instance:
    """A named, configured component: what users type on the command line."""

    kind: str
    name: str
    type: str
    params: dict[str, Any]
    file: str
    line: int
    description: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: list[str]
    codecs: list[str]
    sr: list[str]
    anchor: tuple[str, str] | None
    qualities: dict[str, list[Any]] = field(default_factory=dict)
    description: str = ""
    file: str = ""
    line: int = 0
    #: ``jcsr-bench compare`` tolerances for runs of this suite (jcsr_bench.ci.compare)
    tolerances: dict[str, Any] = field(default_factory=dict)
    #: the metrics to compute (default: every registered one); a fixed set keeps a
    #: suite's results independent of which optional weights a machine has
    metrics: list[str] = field(default_factory=list)


def _describe(expected: Any) -> str:
    options = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(TYPE_NAMES.get(t, t.__name__) for t in options)


def _type_ok(value: Any, expected: Any) -> bool:
    options = expected if isinstance(expected, tuple) else (expected,)
    if value is None:
        return True  # null = use the default
    if isinstance(value, bool):
        return bool in options
    if isinstance(value, int) and float in options:
        return True
    return isinstance(value, options)


class _Lines:
    """Line numbers of a YAML document's mapping keys, from the composed node tree."""

    def __init__(self, node: yaml.Node | None, file: str):
        self.file = file
        self.lines: dict[tuple[str, ...], int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = ".".join((*path, key))
                raise RegistryError(
                    f"{self.file}:{line}: duplicate name {where!r} (first defined on line "
                    f"{seen[key]}). Each name may appear once per file; rename or remove one."
                )
            seen[key] = line
            self.lines[(*path, key)] = line
            self._walk(value_node, (*path, key))

    def at(self, *path: str) -> int:
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 0


def _check_expansion(root: yaml.Node | None, path: Path) -> None:
    """Refuse aliases that expand past ``MAX_VALUES`` values or contain themselves.

    Sizes are memoised per node, so this is linear in the file even for an alias bomb;
    the error names the line of the first value that grows too large.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        line = node.start_mark.line + 1
        if key in open_nodes:
            raise RegistryError(f"{path}:{line}: a YAML alias refers to a value that contains "
                                "it; a registry must be finite plain data.")
        open_nodes.add(key)
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        open_nodes.discard(key)
        if total > MAX_VALUES:
            raise RegistryError(
                f"{path}:{line}: this value expands to more than {MAX_VALUES:,} values "
                "through YAML aliases (*name), the most a registry may hold (an alias "
                "bomb?); write the values out or use fewer aliases."
            )
        sizes[key] = total
        return total

    if root is not None:
        size(root)


def _read(path: Path) -> tuple[dict[str, Any], _Lines, str]:
    """The file's data, its key lines and its SHA-256."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RegistryError(f"registry file {path} is not a regular file (a device, FIFO "
                                "or directory?); give a YAML file.")
        if info.st_size > MAX_BYTES:
            raise RegistryError(f"registry file {path} is {info.st_size:,} bytes, more than "
                                f"the {MAX_BYTES:,} a registry may be; a registry is a few "
                                "pages of YAML.")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise RegistryError(f"registry file {path} grew past {MAX_BYTES:,} bytes while "
                                "being read.")
        text = raw.decode("utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read registry file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(root, path)
        lines = _Lines(root, str(path))
        data = yaml.safe_load(text)
    except RecursionError:
        raise RegistryError(f"{path}: YAML nested too deeply; a registry is a few levels of "
                            "plain data.") from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RegistryError(
            f"{where}: unsupported YAML tag ({exc.problem}); a registry is plain YAML data."
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RegistryError(
            f"{where}: YAML syntax error: {exc.problem or exc}. Check indentation, colons "
            "and brackets near that line."
        ) from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: YAML error: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RegistryError(
            f"{path}:1: a registry must be a mapping with sections {', '.join(SECTIONS)}; "
            f"found {type(data).__name__}."
        )
    return data, lines, hashlib.sha256(raw).hexdigest()


class Registry:
    """The merged, validated registry: instances per kind, and suites."""

    def __init__(self, manager: PluginManager):
        self.manager = manager
        self._instances: dict[str, dict[str, Instance]] = {kind: {} for kind in KINDS}
        self.suites: dict[str, Suite] = {}
        #: named metric sets (``presets: {metrics: {jpeg-ai: [...]}}``), usable wherever a
        #: metric name is (``--metrics jpeg-ai``, a suite's ``metrics``)
        self.presets: dict[str, list[str]] = {}
        self.files: list[dict[str, str]] = []  # {path, origin, sha256} in load order

    # -- loading ---------------------------------------------------------------------
    def add_file(self, path: Path, origin: str = "extra") -> None:
        """Validate one registry file and merge it over what is loaded (names override).

        ``origin`` (a key of ``ORIGINS``) says why it was loaded, for ``files_text``.
        """
        data, lines, sha256 = _read(path)
        self.files.append({"path": str(Path(path).resolve()), "origin": origin,
                           "sha256": sha256})
        for section, entries in data.items():
            line = lines.at(str(section))
            if section not in SECTIONS:
                raise RegistryError(
                    f"{path}:{line}: unknown section {section!r}."
                    f"{did_you_mean(str(section), SECTIONS)} A registry has the sections "
                    f"{', '.join(SECTIONS)}."
                )
            if entries is None:
                continue
            if not isinstance(entries, dict):
                raise RegistryError(
                    f"{path}:{line}: section {section!r} must map names to entries, "
                    f"found {type(entries).__name__}."
                )
            for name, entry in entries.items():
                name = str(name)
                if section == "suites":
                    self.suites[name] = self._suite(path, lines, name, entry)
                elif section == "presets":
                    self._preset(path, lines, name, entry)
                else:
                    self._instances[section][name] = self._instance(
                        path, lines, section, name, entry
                    )

    def _preset(self, path: Path, lines: _Lines, kind: str, entry: Any) -> None:
        """``presets.metrics.NAME: [metric, ...]`` (only metric presets exist)."""
        if kind != "metrics" or not isinstance(entry, dict) or not all(
                isinstance(v, list) for v in entry.values()):
            raise RegistryError(
                f"{path}:{lines.at('presets', kind)}: presets.{kind}: expected "
                "`metrics: {NAME: [metric, ...]}` (only metric presets exist).")
        for name, items in entry.items():
            self.presets[str(name)] = [str(x) for x in items]

    def _instance(self, path: Path, lines: _Lines, kind: str, name: str, entry: Any) -> Instance:
        here = f"{path}:{lines.at(kind, name)}: {kind}.{name}"
        if not isinstance(entry, dict):
            raise RegistryError(
                f"{here}: an entry must be a mapping with at least `type:`, found "
                f"{type(entry).__name__} {entry!r}."
            )
        type_name = entry.get("type")
        if not isinstance(type_name, str):
            raise RegistryError(
                f"{here}: missing `type:` (a string naming a registered {kind} type). "
                f"Known types: {', '.join(sorted(self.manager.types(kind)))}."
            )
        try:
            registration = self.manager.get(kind, type_name)
        except PluginError as exc:
            raise RegistryError(
                f"{path}:{lines.at(kind, name, 'type')}: {kind}.{name}: {exc} "
                "(is the plugin that provides it installed? `jcsr-bench plugins` lists them)"
            ) from exc
        params = {k: v for k, v in entry.items() if k not in COMMON_KEYS}
        schema = registration.params
        if schema is not None:
            for key, value in params.items():
                key_line = lines.at(kind, name, str(key))
                if key not in schema:
                    allowed = ", ".join(sorted({*schema, *COMMON_KEYS}))
                    raise RegistryError(
                        f"{path}:{key_line}: {kind}.{name}: unknown key {key!r} for type "
                        f"{type_name!r}.{did_you_mean(str(key), schema)} Allowed keys: {allowed}."
                    )
                if not _type_ok(value, schema[key]):
                    raise RegistryError(
                        f"{path}:{key_line}: {kind}.{name}.{key}: expected "
                        f"{_describe(schema[key])}, found {type(value).__name__} {value!r}."
                    )
        description = entry.get("description") or ""
        return Instance(kind, name, type_name, params, str(path), lines.at(kind, name),
                        str(description))

    def _suite(self, path: Path, lines: _Lines, name: str, entry: Any) -> Suite:
        here = f"{path}:{lines.at('suites', name)}: suites.{name}"
        if not isinstance(entry, dict):
            raise RegistryError(f"{here}: a suite must be a mapping, found {entry!r}.")
        for key, value in entry.items():
            key_line = lines.at("suites", name, str(key))
            if key not in SUITE_KEYS:
                raise RegistryError(
                    f"{path}:{key_line}: suites.{name}: unknown key {key!r}."
                    f"{did_you_mean(str(key), SUITE_KEYS)} Allowed keys: "
                    f"{', '.join(sorted(SUITE_KEYS))}."
                )
            if not _type_ok(value, SUITE_KEYS[key]):
                raise RegistryError(
                    f"{path}:{key_line}: suites.{name}.{key}: expected "
                    f"{_describe(SUITE_KEYS[key])}, found {type(value).__name__} {value!r}."
                )
        anchor = entry.get("anchor")
        if anchor is not None:
            if set(anchor) != {"codec", "sr"}:
                raise RegistryError(
                    f"{path}:{lines.at('suites', name, 'anchor')}: suites.{name}.anchor: "
                    "must be {codec: NAME, sr: NAME}."
                )
            anchor = (str(anchor["codec"]), str(anchor["sr"]))
        return Suite(
            name,
            [str(x) for x in entry.get("datasets") or []],
            [str(x) for x in entry.get("codecs") or []],
            [str(x) for x in entry.get("sr") or []],
            anchor,
            dict(entry.get("qualities") or {}),
            str(entry.get("description") or ""),
            str(path),
            lines.at("suites", name),
            dict(entry.get("tolerances") or {}),
            [str(x) for x in entry.get("metrics") or []],
        )

    def check_suites(self) -> None:
        """Every name a suite uses must resolve (after all files are merged)."""
        for suite in self.suites.values():
            metrics = [m for item in suite.metrics for m in self.presets.get(item, [item])]
            for kind, names in (("datasets", suite.datasets), ("codecs", suite.codecs),
                                ("sr", suite.sr), ("metrics", metrics)):
                for item in names:
                    self._check_name(kind, item, suite)
            if suite.anchor:
                self._check_name("codecs", suite.anchor[0], suite)
                self._check_name("sr", suite.anchor[1], suite)

    def _check_name(self, kind: str, item: str, suite: Suite) -> None:
        try:
            self.resolve(kind, item)
        except RegistryError as exc:
            raise RegistryError(f"{suite.file}:{suite.line}: suites.{suite.name}: {exc}") from None

    def files_text(self) -> str:
        """One line naming every registry file loaded and why, announced by ``run``."""
        return "registry files: " + ", ".join(
            f"{f['path']} ({ORIGINS.get(f['origin'], f['origin'])})" for f in self.files)

    # -- lookup ----------------------------------------------------------------------
    def instances(self, kind: str) -> dict[str, Instance]:
        return dict(self._instances[kind])

    def resolve(self, kind: str, name: str) -> Instance:
        """An instance by name, or a registered type by name with default parameters."""
        if name in self._instances[kind]:
            return self._instances[kind][name]
        if name in self.manager.types(kind):
            registration = self.manager.types(kind)[name]
            return Instance(kind, name, name, {}, registration.source, 0,
                            registration.description)
        known = [*self._instances[kind], *self.manager.types(kind)]
        raise RegistryError(
            f"unknown {kind[:-1] if kind.endswith('s') else kind} {name!r}."
            f"{did_you_mean(name, known)} `jcsr-bench list {kind}` shows them all."
        )

    def expand(self, kind: str, spec: str | Sequence[str]) -> list[str]:
        """Names from a comma list ("jpeg,bmshj") or a list; "all" = every instance; a
        metric preset's name (``jpeg-ai``) stands for its metrics."""
        items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
        if kind == "metrics":
            items = [m for item in items for m in self.presets.get(item, [item])]
        names: list[str] = []
        for item in items:
            if not item:
                continue
            expanded = list(self._instances[kind]) if item == "all" else [item]
            for name in expanded:
                self.resolve(kind, name)
                if name not in names:
                    names.append(name)
        return names

    def build(self, kind: str, name: str, **overrides: Any) -> Any:
        """Construct the component: ``factory(**params)``, errors naming the entry."""
        instance = self.resolve(kind, name)
        registration = self.manager.get(kind, instance.type)
        params = {**instance.params, **overrides}
        try:
            component = registration.factory(**params)
        except JcsrError:
            raise
        except TypeError as exc:
            raise RegistryError(
                f"{instance.where}: {kind}.{name}: type {instance.type!r} rejected its "
                f"parameters {sorted(params)}: {exc}"
            ) from exc
        # A component whose parameters name other entries (an adaptive SR model's
        # ``adapt.init`` and ``adapt.dataset``) resolves them through this registry.
        bind = getattr(component, "bind_registry", None)
        if callable(bind):
            bind(self, name)
        return component


def default_registry_files(
    extra: Iterable[str | os.PathLike[str]] = (),
) -> list[tuple[Path, str]]:
    """``(file, origin)``: the shipped registry, ./jcsr-bench.yaml when present, then
    ``extra`` files."""
    files = [(SHIPPED, "shipped")]
    local = Path.cwd() / PROJECT_LOCAL
    if local.is_file():
        files.append((local, "local"))
    files.extend((Path(p).expanduser(), "extra") for p in extra)
    return files


def load_registry(
    extra: Iterable[str | os.PathLike[str]] = (), *, manager: PluginManager | None = None
) -> Registry:
    """Load and validate the shipped registry plus user registries (later ones override)."""
    registry = Registry(manager or get_plugin_manager())
    for path, origin in default_registry_files(extra):
        registry.add_file(path, origin)
    registry.check_suites()
    return registry
