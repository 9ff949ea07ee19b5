"""Scenario: three jurors with different per-category accuracies, 200 seeded verdicts."""

from __future__ import annotations

import numpy as np

from app.trust.records import OutcomeRecord
from app.trust.replay import replay
from app.trust.statistics import TrustStats, compute_stats
from app.trust.weights import ProposedWeights, propose_weights

from .factories import juror, record

ACCURACY = {
    "deploy": {"A": 0.9, "B": 0.55, "C": 0.7},
    "finance": {"A": 0.55, "B": 0.9, "C": 0.7},
}


def _verdicts(n: int, seed: int) -> list[OutcomeRecord]:
    rng = np.random.default_rng(seed)
    out: list[OutcomeRecord] = []
    for i in range(n):
        category = "deploy" if i % 2 == 0 else "finance"
        correct = "yes" if rng.uniform() < 0.5 else "no"
        wrong = "no" if correct == "yes" else "yes"
        jurors = []
        for name, p in ACCURACY[category].items():
            right = rng.uniform() < p
            jurors.append(juror(name, correct if right else wrong, confidence=0.8))
        out.append(record(f"v{i}", correct, jurors, category=category))
    return out


def _propose(records: list[OutcomeRecord]) -> ProposedWeights:
    return propose_weights(
        compute_stats(records),
        options_count_by_category={"deploy": 2, "finance": 2},
        min_evidence=30,
        shrinkage=10.0,
        current={},
    )


def test_proposal_ranks_jurors_per_category_and_beats_neutral_replay() -> None:
    records = _verdicts(200, seed=2024)
    proposal = _propose(records)
    deploy, finance = proposal.table["deploy"], proposal.table["finance"]
    assert deploy["A"] > deploy["C"] > deploy["B"]
    assert finance["B"] > finance["C"] > finance["A"]
    assert all(c.kept is None for c in proposal.cells)
    # In-sample replay: the neutral table is plain majority of three (expected 0.82);
    # the proposal follows the 0.9 juror in each category (expected ~0.9).
    result = replay(records, active={}, proposed=proposal.table)
    assert result.n == 200
    assert result.accuracy_active is not None
    assert result.accuracy_proposed is not None
    assert result.accuracy_proposed > result.accuracy_active
    # Every flip the proposal wins must outnumber those it loses.
    won = sum(f.correct_side == "proposed" for f in result.flips)
    lost = sum(f.correct_side == "active" for f in result.flips)
    assert won - lost == result.correct_proposed - result.correct_active


def test_proposal_generalises_to_fresh_verdicts() -> None:
    # Weights learned on one seeded sample also win on a fresh one (out of sample).
    proposal = _propose(_verdicts(200, seed=2024))
    result = replay(_verdicts(400, seed=99), active={}, proposed=proposal.table)
    assert result.accuracy_proposed is not None
    assert result.accuracy_active is not None
    assert result.accuracy_proposed > result.accuracy_active


def test_stats_and_proposal_round_trip_through_json() -> None:
    records = _verdicts(40, seed=5)
    stats = compute_stats(records)
    proposal = _propose(records)
    assert TrustStats.model_validate_json(stats.model_dump_json()) == stats
    assert ProposedWeights.model_validate_json(proposal.model_dump_json()) == proposal
