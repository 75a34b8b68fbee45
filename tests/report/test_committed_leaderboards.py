"""The leaderboards committed under leaderboards/ are what the code renders from the
committed stores, byte for byte: a report can never drift from its data."""

from pathlib import Path

import pytest

from jcsr_bench.report.leaderboard import leaderboard_from_store

ROOT = Path(__file__).resolve().parents[2] / "leaderboards"
RUNS = sorted(p.parent for p in ROOT.glob("*/results.sqlite"))


def test_there_is_a_committed_run():
    assert RUNS, f"no committed results store under {ROOT}"


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_committed_leaderboard_regenerates_byte_identically(run):
    expected = (run / "leaderboard.md").read_bytes()
    assert leaderboard_from_store(run).encode("utf-8") == expected
