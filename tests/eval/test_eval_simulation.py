"""The simulation study: its building blocks, determinism and its qualitative result."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from eval import simulation as sim

SMALL = sim.StudyConfig(sizes=(5, 500), reps=30, test_items=400, seed=7)


@pytest.fixture(scope="module")
def binary() -> sim.StudyResult:
    return sim.run_study(sim.Scenario(k=2, rho=0.3), SMALL)


def test_posterior_mean_and_log_odds_weights() -> None:
    # Beta(1,1): 3 of 4 right -> (3 + 1) / (4 + 2) = 2/3; 0 of 4 -> 1/6
    p = sim.posterior_mean_accuracy(np.array([3.0, 0.0]), 4)
    assert p.tolist() == pytest.approx([2 / 3, 1 / 6])
    # p = 0.75: log(0.75 / 0.25) = log 3; with k = 3 add log 2 -> log 6
    w = sim.log_odds_weights(np.array([0.75, 0.5]), 3)
    assert w.tolist() == pytest.approx([math.log(6), math.log(2)])


def test_weighted_vote_on_a_hand_case() -> None:
    rng = np.random.default_rng(0)
    votes = np.array([[0, 1, 1], [2, 2, 0]])
    weights = np.array([[3.0, 1.0, 1.0], [1.0, 1.0, 1.5]])
    # Item 1: option 0 gets 3, option 1 gets 1 + 1 = 2 -> 0.
    # Item 2: option 2 gets 1 + 1 = 2, option 0 gets 1.5 -> 2.
    assert sim.weighted_vote(rng, votes, weights, k=3).tolist() == [0, 2]
    # Plain majority would pick option 1 on item 1.
    assert sim.weighted_vote(rng, votes, np.ones((2, 3)), k=3).tolist() == [1, 2]


def test_simulated_jurors_keep_their_accuracy_and_errors_correlate() -> None:
    rng = np.random.default_rng(1)
    acc = np.array([[0.9], [0.6]])
    votes = sim.simulate_votes(rng, acc, np.zeros(20_000, dtype=np.int64), k=4, rho=0.5)
    wrong = votes != 0
    # Marginal accuracies survive the common factor (binomial s.e. about 0.0035).
    assert (1 - wrong.mean(axis=0)).tolist() == pytest.approx([0.9, 0.6], abs=0.015)
    # The shared factor makes errors positively correlated.
    assert np.corrcoef(wrong[:, 0], wrong[:, 1])[0, 1] > 0.1
    assert set(np.unique(votes).tolist()) <= {0, 1, 2, 3}


def test_estimated_weights_beat_majority_and_approach_oracle(binary: sim.StudyResult) -> None:
    acc = binary.accuracy
    # With N = 500 per category, estimated weights are as good as true ones (within 0.01)
    # and beat the plain majority, which ignores who is good at what.
    assert acc["weighted_estimated"][-1] >= acc["majority"][-1]
    assert acc["weighted_estimated"][-1] == pytest.approx(acc["weighted_true"][-1], abs=0.01)
    # With only 5 labelled items the estimates are noisy and the gap to the oracle is larger.
    gap_small = acc["weighted_true"][0] - acc["weighted_estimated"][0]
    gap_large = acc["weighted_true"][-1] - acc["weighted_estimated"][-1]
    assert gap_small > gap_large + 0.02


def test_study_is_deterministic(binary: sim.StudyResult) -> None:
    again = sim.run_study(sim.Scenario(k=2, rho=0.3), SMALL)
    assert again.accuracy == binary.accuracy


def test_cli_writes_table_and_plot(tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path), "--k", "3", "--rho", "0.2", "--reps", "3"]
    sim.main([*argv, "--test-items", "50", "--sizes", "5", "50"])
    md = (tmp_path / "simulation.md").read_text()
    assert "## k = 3, rho = 0.2" in md
    assert "| 50 |" in md
    assert (tmp_path / "simulation_k3_rho0.2.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "simulation.json").stat().st_size > 0
