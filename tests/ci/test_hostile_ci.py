"""Hostile CI inputs (issue 26): malformed or emptied baselines, foreign history stores."""

from __future__ import annotations

import json
import sqlite3

import pytest
from test_compare import runs  # noqa: F401 - the module-scoped fixture of run folders

from jcsr_bench.ci.baseline import load_baseline, save_baseline
from jcsr_bench.cli.main import main
from jcsr_bench.kit.errors import DataError


@pytest.fixture
def base_data(tmp_path, runs):  # noqa: F811
    path = tmp_path / "baseline.json"
    save_baseline(runs("base"), path)
    return json.loads(path.read_text())


def _first_cell(data):
    combo = next(iter(data["combinations"].values()))
    return combo["points"][0], next(iter(combo["points"][0]["images"].values()))


def _write(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _cli(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_point_without_images_names_the_key_and_file(tmp_path, base_data, runs, capsys):  # noqa: F811
    point, _ = _first_cell(base_data)
    del point["images"]
    path = _write(tmp_path, base_data)
    code, _, err = _cli(capsys, "compare", path, runs("base"))
    assert code == 2
    assert f"{path}: baseline key combinations[" in err and ".points[0].images is missing" in err


@pytest.mark.parametrize("bad", ["22.5", True, None])
def test_string_metric_value_is_refused(tmp_path, base_data, bad):
    _, cell = _first_cell(base_data)
    metric = next(k for k, v in cell["values"].items() if isinstance(v, float))
    cell["values"][metric] = bad
    cell.pop("reasons", None)
    with pytest.raises(DataError, match=rf"bad.json: baseline key .*values\['{metric}'\] is"):
        load_baseline(_write(tmp_path, base_data))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_baseline_values_are_refused_at_load(tmp_path, base_data, bad):
    _, cell = _first_cell(base_data)
    metric = next(k for k, v in cell["values"].items() if isinstance(v, float))
    cell["values"][metric] = 12345.5
    path = _write(tmp_path, base_data)
    path.write_text(path.read_text().replace("12345.5", bad))
    with pytest.raises(DataError, match=rf"values\['{metric}'\] is .*not a finite number"):
        load_baseline(path)


def test_deeply_nested_json_is_one_clear_error(tmp_path, capsys, runs):  # noqa: F811
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    code, _, err = _cli(capsys, "compare", path, runs("base"))
    assert code == 2 and f"{path} is not a baseline: JSON nested too deeply" in err


def test_emptied_baseline_is_incomparable_unless_asked(tmp_path, base_data, runs, capsys):  # noqa: F811
    base_data["combinations"] = {}
    path = _write(tmp_path, base_data)
    code, out, _ = _cli(capsys, "compare", path, runs("base"))
    assert code == 3
    assert out.startswith("**jcsr-bench compare: INCOMPARABLE** (exit 3): the baseline holds "
                          "no combination")
    code, out, _ = _cli(capsys, "compare", path, runs("base"), "--allow-empty-baseline")
    assert code == 0 and "4 new (not judged)" in out.splitlines()[0]


@pytest.mark.parametrize("kind", ["foreign", "results"])
def test_history_add_refuses_other_databases_untouched(tmp_path, runs, capsys, kind):  # noqa: F811
    if kind == "foreign":
        store = tmp_path / "other.sqlite"
        with sqlite3.connect(store) as conn:
            conn.execute("CREATE TABLE contacts (name TEXT)")
        conn.close()
    else:
        store = runs("base") / "results.sqlite"
    before = store.read_bytes()
    code, _, err = _cli(capsys, "history", "add", "--results", runs("base"), "--commit",
                        "a" * 40, "--anchor", "other+up", "--store", store)
    assert code == 2
    assert f"{store} is not a jcsr-bench history store" in err and "left untouched" in err
    assert store.read_bytes() == before
    assert not store.with_name(store.name + "-journal").exists()
