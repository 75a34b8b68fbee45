"""Option parsing shared by the subcommands (``jcsr_bench.cli.options``)."""

import argparse

import pytest

from jcsr_bench.cli.options import non_negative, qualities, split_list


def test_split_list():
    assert split_list("a, b,,c ") == ["a", "b", "c"]
    assert split_list("") is None and split_list(None) is None


def test_qualities_use_the_shared_parser():
    assert qualities("10..30..10") == [10, 20, 30]
    assert qualities(None) is None


def test_non_negative():
    assert non_negative("0.5") == 0.5
    for bad, why in (("-1", "must be >= 0"), ("x", "expected a number"), ("nan", ">= 0")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            non_negative(bad)
