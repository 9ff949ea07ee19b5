"""One-coin Dawid-Skene: accuracies recovered from agreement alone."""

from __future__ import annotations

import numpy as np
import pytest

from app.trust.records import OutcomeRecord
from app.trust.unsupervised import dawid_skene, estimate_unsupervised_weights

from .factories import juror, record

TRUE_ACCURACY = {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6, "e": 0.55}


def _synthetic(n: int, seed: int) -> list[OutcomeRecord]:
    rng = np.random.default_rng(seed)
    out: list[OutcomeRecord] = []
    for i in range(n):
        correct = "yes" if rng.uniform() < 0.5 else "no"
        wrong = "no" if correct == "yes" else "yes"
        jurors = [
            juror(name, correct if rng.uniform() < p else wrong)
            for name, p in TRUE_ACCURACY.items()
        ]
        out.append(record(f"v{i}", correct, jurors))
    return out


def test_recovers_accuracies_without_outcomes() -> None:
    result = estimate_unsupervised_weights(_synthetic(600, seed=3), min_evidence=50)
    assert result.unsupervised is True
    cells = {c.juror: c for c in result.cells if c.category == "deploy"}
    for name, p in TRUE_ACCURACY.items():
        assert cells[name].accuracy == pytest.approx(p, abs=0.07)
        assert cells[name].converged
    ranked = sorted(result.table["deploy"], key=result.table["deploy"].__getitem__, reverse=True)
    assert ranked == ["a", "b", "c", "d", "e"]


def test_unanimous_items_give_high_but_finite_accuracy() -> None:
    items = [(("yes", "no"), {"a": "yes", "b": "yes", "c": "yes"})] * 20
    accuracy, _, converged = dawid_skene(items)
    assert converged
    # Laplace smoothing: at most (20 + 1) / (20 + 2).
    assert all(0.9 < p <= 21 / 22 for p in accuracy.values())


def test_min_evidence_leaves_thin_cells_out_of_the_table() -> None:
    result = estimate_unsupervised_weights(_synthetic(30, seed=1), min_evidence=50)
    assert result.table == {}
    assert len(result.cells) == 10  # 5 jurors x (deploy, "*")
