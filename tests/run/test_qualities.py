"""``--qualities``: every accepted form, one clear error per bad one, repeats run once."""

import sqlite3

import pytest

from helpers import tiny_registry as make_tiny_registry
from jcsr_bench.cli.main import main
from jcsr_bench.run.qualities import QualitiesError, parse_qualities, unique


@pytest.mark.parametrize(("text", "expected"), [
    ("1,4,8", [1, 4, 8]),
    ("1..4", [1, 2, 3, 4]),
    ("10..90..20", [10, 30, 50, 70, 90]),
    ("10..20..5", [10, 15, 20]),
    ("7..7", [7]),
    ("1..3, 8", [1, 2, 3, 8]),
    ("0.5,2", [0.5, 2]),
    ("high", ["high"]),
])
def test_accepted_forms(text, expected):
    assert parse_qualities(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("", "no quality given"),
    ("  ", "no quality given"),
    (",", "no quality given"),
    ("1,,4", "an empty item"),
    ("9..1", "is empty (it counts down); write 1..9"),
    ("a..b", "'a..b' is not a range of whole numbers"),
    ("1.5..4", "not a range of whole numbers"),
    ("1..8..0", "step of '1..8..0' must be a positive"),
    ("1..8..-2", "must be a positive"),
    ("1..2..3..4", "more than three"),
])
def test_bad_forms_name_the_value_and_the_accepted_forms(text, why):
    with pytest.raises(QualitiesError) as info:
        parse_qualities(text)
    message = str(info.value)
    assert f"--qualities {text!r}" in message and why in message
    assert "'1..8'" in message and "'10..90..20'" in message  # the accepted forms


def test_unique_keeps_first_order_and_names_repeats():
    assert unique([5, 5, 5]) == ([5], [5])
    assert unique([1, 2, 1, 3, 2]) == ([1, 2, 3], [1, 2])
    assert unique([1, 2]) == ([1, 2], [])


def test_unique_is_linear_time():
    many = list(range(200_000)) * 2
    seen, repeated = unique(many)  # O(n^2) took minutes here
    assert len(seen) == 200_000 and len(repeated) == 200_000


@pytest.mark.parametrize("text", ["1..100000000", f"1..{10**12}", "1..600,601..1200",
                                  ",".join(map(str, range(1001)))])
def test_huge_ranges_are_refused_before_expanding(text):
    with pytest.raises(QualitiesError, match="more than the 1,000 qualities"):
        parse_qualities(text)


@pytest.mark.parametrize("text", ["9..1", "", "a..b", "10..20..x", f"1..{10**12}"])
def test_cli_exits_2_without_a_traceback(text, capsys):
    assert main(["run", "--codec", "jpeg", "--sr", "bicubic", "--qualities", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jcsr-bench: error: --qualities {text!r}")
    assert "Traceback" not in err


@pytest.fixture
def tiny_registry(tmp_path):
    return make_tiny_registry(tmp_path)


def test_repeated_quality_runs_once_with_a_note(tiny_registry, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--registry", str(tiny_registry), "--dataset", "tiny", "--codec",
                 "jpeg", "--sr", "bicubic", "--qualities", "5,5,5", "--output", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "--qualities '5,5,5' names 5 more than once; each quality runs once: 5" in \
        captured.err
    assert "1 cells: 1 computed" in captured.out
    with sqlite3.connect(out / "results.sqlite") as conn:
        assert conn.execute("SELECT quality FROM cells").fetchall() == [("5",)]


def test_stepped_range_runs_those_qualities(tiny_registry, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--registry", str(tiny_registry), "--dataset", "tiny", "--codec",
                 "jpeg", "--sr", "bicubic", "--qualities", "10..20..5", "--output",
                 str(out)]) == 0
    with sqlite3.connect(out / "results.sqlite") as conn:
        stored = sorted(int(q) for (q,) in conn.execute("SELECT quality FROM cells"))
    assert stored == [10, 15, 20]
