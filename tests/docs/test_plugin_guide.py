"""The plugin guide (docs/plugins.md) is code that runs: its test snippet is the example's
tests."""

import re
import sys

import pytest

from helpers import REPO

EXAMPLE = REPO / "examples" / "jcsr-bench-posterize"
GUIDE = REPO / "docs" / "plugins.md"


def guide_snippet() -> str:
    text = GUIDE.read_text()
    found = re.findall(r"```python\n(import jcsr_posterize\.plugin\n.*?)```", text, re.S)
    assert len(found) == 1, "the guide's test snippet is missing or duplicated"
    return found[0]


def test_the_snippet_is_the_example_plugins_test_file():
    assert guide_snippet() == (EXAMPLE / "tests" / "test_posterize.py").read_text()


def test_the_snippet_runs_and_its_tests_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    namespace: dict = {}
    exec(compile(guide_snippet(), "docs/plugins.md (plugin guide)", "exec"), namespace)
    tests = {name: fn for name, fn in namespace.items() if name.startswith("test_")}
    assert set(tests) == {"test_codec", "test_sr_model", "test_registers", "test_in_a_run"}
    for name, fn in tests.items():
        fn(tmp_path / name) if name == "test_in_a_run" else fn()
    assert "2 cells: 2 computed" in capsys.readouterr().out  # it really ran a benchmark
    for module in [m for m in sys.modules if m.startswith("jcsr_posterize")]:
        monkeypatch.delitem(sys.modules, module)


def test_run_benchmark_returns_rows_and_curves(tmp_path):
    from helpers import tiny_registry
    from jcsr_bench import run_benchmark

    result = run_benchmark(datasets="tiny", codecs=["jpeg"], srs="bicubic,lanczos",
                           qualities="10..30..20", registry=tiny_registry(tmp_path / "d"),
                           output=tmp_path / "out")
    assert result.exit_code == 0 and result.failed == []
    assert sorted((r["sr"], r["quality"]) for r in result.rows) == [
        ("bicubic", 10), ("bicubic", 30), ("lanczos", 10), ("lanczos", 30)]
    assert all(r["status"] == "ok" and r["values"]["bpp"] > 0 for r in result.rows)
    assert {c.label: [p.quality for p in c.points] for c in result.curves} == {
        "jpeg+bicubic": [10, 30], "jpeg+lanczos": [10, 30]}
    left = {p.name for p in (tmp_path / "out").iterdir()}
    assert "results.sqlite" in left and not {"results.sqlite-wal", "results.sqlite-shm"} & left
    dry = run_benchmark(datasets="tiny", codecs="jpeg", srs="bicubic", qualities=[10, 20],
                        dry_run=True, registry=tiny_registry(tmp_path / "d2"),
                        output=tmp_path / "dry")
    assert dry.summary.cells == 2 and dry.rows == [] and dry.curves == []
    assert not (tmp_path / "dry" / "results.sqlite").exists()


def test_importing_the_api_stays_light():
    import subprocess

    code = ("import sys, jcsr_bench; jcsr_bench.run_benchmark; "
            "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("bad", [[], ""])
def test_run_benchmark_refuses_empty_qualities(tmp_path, bad):
    from jcsr_bench import run_benchmark
    from jcsr_bench.run.qualities import QualitiesError

    with pytest.raises(QualitiesError, match="no quality given"):
        run_benchmark(codecs="jpeg", srs="bicubic", qualities=bad, output=tmp_path)


class Unpicklable:
    """Conforms in every way but one: a lambda inside cannot be sent to a Ray worker."""

    identity = "unpicklable:v1"
    qualities = [1, 2]

    def __init__(self):
        self.hook = lambda: None

    def encode(self, image, quality):
        if quality not in self.qualities:
            raise ValueError(f"quality {quality!r}")
        return bytes([quality]) + image.numpy().tobytes()

    def decode(self, data):
        import torch

        if len(data) != 1 + 3 * 64 * 96:
            raise ValueError("corrupt payload")
        return torch.frombuffer(bytearray(data[1:]), dtype=torch.uint8).view(3, 64, 96)


class Named(Unpicklable):
    """A ladder of names: its str qualities reach ``encode`` as written."""

    qualities = ["low", "high"]

    def __init__(self):
        self.seen = []

    def encode(self, image, quality):
        self.seen.append(quality)
        if quality not in self.qualities:
            raise ValueError(f"quality {quality!r}")
        return bytes([self.qualities.index(quality)]) + image.numpy().tobytes()


def test_jcsr_bench_check_runs_the_kit_on_a_plugin_and_catches_a_planted_bug(monkeypatch,
                                                                             capsys):
    import types

    from jcsr_bench import hookimpl
    from jcsr_bench.cli.main import main
    from jcsr_bench.testing import plugin_manager

    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import jcsr_posterize.plugin as plugin
    with plugin_manager(plugin):
        names = [i.name for i in __import__("jcsr_bench.plugin.manager", fromlist=["x"])
                 .get_plugin_manager().plugins()]
        assert main(["check", names[0]]) == 0
        out = capsys.readouterr().out
        assert "ok    codec posterize" in out and "ok    sr nearest" in out
        assert out.endswith("2 of 2 component(s) conform\n")
        assert main(["check", "posterize"]) == 0  # one type by name
    capsys.readouterr()
    broken = types.ModuleType("broken_plugin")

    @hookimpl
    def register_codecs(register):
        register("unpicklable", Unpicklable)

    broken.register_codecs = register_codecs
    with plugin_manager(broken):
        assert main(["check", "unpicklable"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  codec unpicklable: Unpicklable(") and \
        "must pickle for --executor ray" in out
    assert main(["check", "no-such-thing"]) == 2
    assert "no plugin, registry instance or type is called 'no-such-thing'" in \
        capsys.readouterr().err
    for module in [m for m in sys.modules if m.startswith("jcsr_posterize")]:
        monkeypatch.delitem(sys.modules, module)


def test_the_contract_details_the_guide_states(tmp_path):
    """quality types, to(device)'s return value, description always accepted."""
    from jcsr_bench.plugin.manager import PluginManager
    from jcsr_bench.plugin.registry import load_registry
    from jcsr_bench.run.workunit import UnitContext
    from jcsr_bench.testing import check_codec

    class InPlace:
        def to(self, device):
            self.device = device  # moved itself: returns None

    class Copying:
        def to(self, device):
            return ("moved", device)

    context = UnitContext(4, "matlab", "cpu", {}, {}, [])
    in_place, copying = InPlace(), Copying()
    assert context.on_device(in_place) is in_place and in_place.device == "cpu"
    assert context.on_device(copying) == ("moved", "cpu")

    named = Named()
    check_codec(named)
    assert {"low", "high"} <= set(named.seen)
    # description: accepted by every entry, never passed to the factory
    path = tmp_path / "r.yaml"
    path.write_text("codecs:\n  j: {type: pillow, format: JPEG, description: my words}\n")
    registry = load_registry([path], manager=PluginManager(entry_points=False))
    assert registry.instances("codecs")["j"].description == "my words"
    assert registry.build("codecs", "j").qualities
