"""registry.yaml: validation errors name the place; user registries override."""

import textwrap

import pytest

from jcsr_bench.kit.errors import RegistryError
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import SHIPPED, Registry, load_registry


@pytest.fixture
def manager():
    return PluginManager(entry_points=False)


def load_text(tmp_path, manager, text):
    path = tmp_path / "user.yaml"
    path.write_text(textwrap.dedent(text))
    return load_registry([path], manager=manager), path


def test_shipped_registry_is_valid(manager):
    registry = load_registry(manager=manager)
    assert {"bmshj", "bmshj-msssim", "jpeg", "webp", "avif", "jpeg2000"} <= set(
        registry.instances("codecs"))
    assert {"bicubic", "esrgan-b1", "esrgan-b2"} <= set(registry.instances("sr"))
    assert registry.suites["default"].anchor == ("jpeg", "bicubic")
    assert registry.instances("codecs")["bmshj"].params["qualities"] == list(range(1, 9))


@pytest.mark.parametrize(
    ("text", "line", "phrases"),
    [
        ("codecs:\n  mine:\n    type: pilow\n", 3, ["unknown codecs type 'pilow'",
                                                     "Did you mean 'pillow'"]),
        ("codecs:\n  mine:\n    type: pillow\n    qualites: [5]\n", 4,
         ["unknown key 'qualites'", "Did you mean 'qualities'", "Allowed keys"]),
        ("codecs:\n  mine:\n    type: pillow\n    qualities: 5\n", 4,
         ["codecs.mine.qualities", "expected a list", "found int"]),
        ("codecs:\n  mine:\n    type: pillow\n  mine:\n    type: pillow\n", 4,
         ["duplicate name 'codecs.mine'", "first defined on line 2"]),
        ("codecs:\n  mine: {type: pillow\n  other: 1\n", 3, ["YAML syntax error"]),
        ("codec:\n  mine: {type: pillow}\n", 1, ["unknown section 'codec'",
                                                 "Did you mean 'codecs'"]),
        ("sr:\n  mine:\n    scale: 4\n", 2, ["missing `type:`", "Known types"]),
        ("suites:\n  s:\n    datasets: [samples]\n    codecs: [jpg]\n", 2,
         ["suites.s", "unknown codec 'jpg'", "Did you mean 'jpeg'"]),
        ("suites:\n  s:\n    anchor: {codec: jpeg}\n", 3, ["anchor", "{codec: NAME, sr: NAME}"]),
    ],
    ids=["unknown-type", "unknown-key", "wrong-value-type", "duplicate-name", "yaml-syntax",
         "unknown-section", "missing-type", "suite-unknown-name", "bad-anchor"],
)
def test_invalid_registry_errors_name_the_place(tmp_path, manager, text, line, phrases):
    with pytest.raises(RegistryError) as info:
        load_text(tmp_path, manager, text)
    message = str(info.value)
    assert f"user.yaml:{line}" in message
    for phrase in phrases:
        assert phrase in message
    assert "\n" not in message.strip()  # one paragraph


def test_user_registry_extends_and_overrides(tmp_path, manager):
    registry, path = load_text(tmp_path, manager, """
        codecs:
          jpeg: {type: pillow, format: JPEG, qualities: [50]}
          mine: {type: pillow, format: WEBP, qualities: [10, 20]}
    """)
    assert registry.instances("codecs")["jpeg"].params["qualities"] == [50]
    assert registry.instances("codecs")["jpeg"].file == str(path)
    assert registry.instances("codecs")["mine"].line == 4  # the text starts with a newline
    assert "bmshj" in registry.instances("codecs")  # shipped entries stay


def test_type_names_work_directly_with_default_params(manager):
    registry = load_registry(manager=manager)
    instance = registry.resolve("sr", "spandrel")
    assert (instance.type, instance.params) == ("spandrel", {})
    with pytest.raises(RegistryError, match="Did you mean 'bicubic'"):
        registry.resolve("sr", "bicubc")


def test_expand_comma_lists_and_all(manager):
    registry = load_registry(manager=manager)
    assert registry.expand("sr", "bicubic, lanczos,bicubic") == ["bicubic", "lanczos"]
    assert registry.expand("codecs", "all") == list(registry.instances("codecs"))


def test_build_reports_rejected_parameters(tmp_path, manager):
    from jcsr_bench import hookimpl

    class Strict:
        __name__ = "strict"

        @hookimpl
        def register_metrics(self, register):
            def factory(*, border=4):
                return border

            register("strict-metric", factory)  # no schema: the factory itself checks

    manager = PluginManager(entry_points=False, extra_plugins=(Strict(),))
    registry, path = load_text(tmp_path, manager, """
        metrics:
          m: {type: strict-metric, bordr: 2}
    """)
    with pytest.raises(RegistryError, match=r"user.yaml:3: metrics.m: .*bordr"):
        registry.build("metrics", "m")


def test_registry_uses_safe_yaml_only(tmp_path, manager):
    registry = Registry(manager)
    path = tmp_path / "evil.yaml"
    path.write_text("codecs: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RegistryError, match="evil.yaml:1: unsupported YAML tag"):
        registry.add_file(path)


def test_shipped_file_is_packaged_beside_the_code():
    assert SHIPPED.is_file()


@pytest.mark.parametrize("name", ["/dev/zero", "fifo", "folder"])
def test_non_regular_registry_files_are_refused_before_reading(tmp_path, manager, name):
    import os
    path = tmp_path / name
    if name == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif name == "folder":
        path.mkdir()
    else:
        path = type(path)(name)
    with pytest.raises(RegistryError, match="is not a regular file"):
        Registry(manager).add_file(path)


def test_oversized_registry_is_refused_by_size_not_as_an_alias_bomb(tmp_path, manager):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * 1_000_000 + "\n")
    with pytest.raises(RegistryError, match="more than the 1,000,000 a registry may be"):
        Registry(manager).add_file(path)


def test_cli_registry_dev_zero_fails_at_once(capsys):
    from jcsr_bench.cli.main import main
    assert main(["list", "--registry", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero is not a regular file" in err and "Traceback" not in err
