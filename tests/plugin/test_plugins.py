"""The plugin system: built-ins through the hooks, isolation, strictness, allow-list."""

import sys
import warnings

import pytest

from helpers import make_distribution
from jcsr_bench import hookimpl, lazy
from jcsr_bench.kit.errors import PluginError
from jcsr_bench.plugin.manager import BUILTIN_SOURCE, PluginLoadWarning, PluginManager
from jcsr_bench.testing import check_plugin, plugin_manager

GOOD = """
from jcsr_bench import hookimpl, lazy

@hookimpl
def register_codecs(register):
    register("good-codec", lazy("json:JSONDecoder"), description="a good one")
"""

BROKEN_IMPORT = """
raise RuntimeError("boom at import")
"""

BROKEN_HOOK = """
from jcsr_bench import hookimpl

@hookimpl
def register_sr_models(register):
    raise ValueError("boom in hook")
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fake site-packages holding three plugin distributions."""
    root = tmp_path / "site"
    make_distribution(root, "good-plugin", "good_plugin", GOOD)
    make_distribution(root, "broken-import", "broken_import", BROKEN_IMPORT)
    make_distribution(root, "broken-hook", "broken_hook", BROKEN_HOOK)
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("good_plugin", "broken_import", "broken_hook"):
        sys.modules.pop(name, None)


def test_builtins_register_through_the_hooks():
    manager = PluginManager(entry_points=False)
    assert {"compressai", "pillow"} <= set(manager.types("codecs"))
    assert {"esrgan", "bicubic", "lanczos", "none", "spandrel"} <= set(manager.types("sr"))
    assert {"samples", "folder", "div2k"} <= set(manager.types("datasets"))
    assert {"psnr-rgb", "psnr-y", "ms-ssim-rgb"} <= set(manager.types("metrics"))
    assert manager.types("codecs")["pillow"].source == BUILTIN_SOURCE


def test_entry_points_load_and_failures_are_isolated(site, monkeypatch):
    monkeypatch.delenv("JCSR_BENCH_LOAD_PLUGINS")
    with pytest.warns(PluginLoadWarning) as caught:
        manager = PluginManager()
        codecs = manager.types("codecs")
        manager.types("sr")
    assert codecs["good-codec"].source == "good-plugin"
    failed = {error.distribution: error.error for error in manager.errors}
    assert "boom at import" in failed["broken-import"]
    assert "boom in hook" in failed["broken-hook"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken-import" in messages and "broken-hook" in messages
    infos = {info.distribution: info for info in manager.plugins()}
    assert infos["good-plugin"].registered == {"codecs": ["good-codec"]}
    assert infos["good-plugin"].version == "1.0"


def test_strict_mode_makes_failures_fatal(site, monkeypatch):
    monkeypatch.delenv("JCSR_BENCH_LOAD_PLUGINS")
    monkeypatch.setenv("JCSR_BENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken"):
        PluginManager().types("sr")


@pytest.mark.parametrize(
    ("allow", "expected"),
    [("", set()), ("good-plugin", {"good-codec"}), ("Good_Plugin, other", {"good-codec"})],
)
def test_allow_list_limits_third_party_plugins(site, monkeypatch, allow, expected):
    monkeypatch.setenv("JCSR_BENCH_LOAD_PLUGINS", allow)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the broken ones are not even imported
        manager = PluginManager()
        names = set(manager.types("codecs")) - set(PluginManager(entry_points=False).types(
            "codecs"))
    assert names == expected
    assert manager.errors == []


class Duplicate:
    __name__ = "duplicate-plugin"

    @hookimpl
    def register_codecs(self, register):
        register("pillow", lazy("json:JSONDecoder"))


def test_duplicate_type_name_is_an_error_naming_both():
    with pytest.warns(PluginLoadWarning, match="registered by both"):
        manager = PluginManager(entry_points=False, extra_plugins=(Duplicate(),))
        manager.types("codecs")
    with pytest.raises(PluginError) as info:
        manager.get("codecs", "pillow")
    assert BUILTIN_SOURCE in str(info.value)
    assert "(registered in-process)" in str(info.value)


def test_duplicate_type_name_is_fatal_in_strict_mode(monkeypatch):
    monkeypatch.setenv("JCSR_BENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="registered by both"):
        PluginManager(entry_points=False, extra_plugins=(Duplicate(),)).types("codecs")


def test_unknown_type_suggests_close_names():
    manager = PluginManager(entry_points=False)
    with pytest.raises(PluginError, match="Did you mean 'pillow'"):
        manager.get("codecs", "pilow")


class BadName:
    __name__ = "bad-name"

    @hookimpl
    def register_metrics(self, register):
        register("has space", lambda: None)


def test_invalid_type_names_are_rejected():
    with pytest.warns(PluginLoadWarning, match="invalid metrics type name"):
        manager = PluginManager(entry_points=False, extra_plugins=(BadName(),))
        assert "has space" not in manager.types("metrics")


def test_testing_helpers_register_a_plugin_object():
    class Mine:
        __name__ = "mine"

        @hookimpl
        def register_datasets(self, register):
            register("my-data", lazy("json:JSONDecoder"))

    plugin = Mine()
    assert check_plugin(plugin) == {"datasets": ["my-data"]}
    from jcsr_bench.plugin.manager import get_plugin_manager

    with plugin_manager(plugin) as manager:
        assert get_plugin_manager() is manager
        assert "my-data" in manager.types("datasets")
    assert "my-data" not in get_plugin_manager().types("datasets")


class BadParams:
    __name__ = "bad-params"

    @hookimpl
    def register_codecs(self, register):
        from pathlib import Path

        register("path-typed", lazy("json:JSONDecoder"), params={"weights": Path})
        register("fine", lazy("json:JSONDecoder"), params={"level": (int, float), "x": str})


def test_params_may_only_name_yaml_types():
    with pytest.warns(PluginLoadWarning, match=r"params\['weights'\] of codecs type "
                      r"'path-typed' is <class 'pathlib.Path'>: a registry value is checked "
                      r"against one of str, int, float, bool, list, dict"):
        manager = PluginManager(entry_points=False, extra_plugins=(BadParams(),))
        codecs = manager.types("codecs")
    assert "path-typed" not in codecs
