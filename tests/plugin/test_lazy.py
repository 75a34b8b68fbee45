"""Lazy factories (``jcsr_bench.plugin.lazy``): registering a type imports nothing."""

import sys

import pytest

from jcsr_bench import lazy


def test_the_target_is_imported_only_when_the_factory_is_called(tmp_path, monkeypatch):
    (tmp_path / "lazy_target_mod.py").write_text(
        "class Thing:\n    def __init__(self, **params):\n        self.params = params\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = lazy("lazy_target_mod:Thing")
    assert "lazy_target_mod" not in sys.modules
    assert factory.target == "lazy_target_mod:Thing"
    thing = factory(size=3)
    assert "lazy_target_mod" in sys.modules and thing.params == {"size": 3}
    monkeypatch.delitem(sys.modules, "lazy_target_mod")


@pytest.mark.parametrize("bad", ["no_colon", ":Name", "module:"])
def test_a_malformed_target_is_refused_at_registration(bad):
    with pytest.raises(ValueError, match="package.module:Name"):
        lazy(bad)
