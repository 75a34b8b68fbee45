"""The run's printed summary says why a column shows no number (issue 26.14)."""

from __future__ import annotations

import math

from jcsr_bench.run.summary import NOT_AVAILABLE_NOTE, fmt_range


def test_infinite_psnr_is_shown_with_its_reason_not_as_a_bare_na():
    assert fmt_range([math.inf, math.inf], ".2f") == "inf (lossless)"  # was "n/a"
    assert fmt_range([30.0, math.inf, 40.0], ".2f") == "30.00-40.00-inf (lossless)"


def test_absent_values_carry_a_marker_to_the_note():
    assert fmt_range([None, None], ".4f") == "n/a [1]"
    assert NOT_AVAILABLE_NOTE.startswith("[1] n/a:") and "leaderboard.md" in NOT_AVAILABLE_NOTE
    assert fmt_range([0.5, 0.25], ".4f") == "0.2500-0.5000"
