"""The simulation: two correlated copies of a weak juror never outvote one strong juror."""

from __future__ import annotations

import pytest

from eval.correlated import COPY_1, COPY_2, STRONG, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlated_copies_never_outvote_the_strong_juror(seed: int) -> None:
    outcome = run(seed=seed)

    assert outcome.disputed > 100
    # Independent log-odds weights let the two copies (0.85 each) beat the strong (1.39).
    assert outcome.copies_won_log_odds == outcome.disputed
    assert outcome.copies_won_chosen == 0
    weights = outcome.selection.weights
    assert weights[STRONG] > weights[COPY_1] + weights[COPY_2]
