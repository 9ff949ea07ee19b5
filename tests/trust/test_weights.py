"""Log-odds weights, shrinkage, min-evidence fallback and the model-drift guard."""

from __future__ import annotations

import math

import pytest

from app.trust.records import OutcomeRecord
from app.trust.statistics import compute_stats
from app.trust.weights import (
    DriftReason,
    KeptReason,
    drop_drifted,
    log_odds_weight,
    propose_weights,
    shrink,
)

from .factories import juror, record


def test_log_odds_weight_by_hand() -> None:
    # p = 0.75, k = 2: log(0.75/0.25) + log(1) = log 3.
    assert log_odds_weight(0.75, 2) == pytest.approx(math.log(3))
    # p = 0.5, k = 3: log 1 + log 2 = log 2 (still above chance 1/3).
    assert log_odds_weight(0.5, 3) == pytest.approx(math.log(2))
    # p = 0.25, k = 2: below chance -> negative.
    assert log_odds_weight(0.25, 2) == pytest.approx(-math.log(3))
    with pytest.raises(ValueError, match="strictly"):
        log_odds_weight(1.0, 2)


def test_shrink_by_hand() -> None:
    # (n*raw + s*global)/(n + s) = (20*2 + 10*1)/(20 + 10) = 50/30.
    assert shrink(2.0, 1.0, n=20, shrinkage=10) == pytest.approx(5 / 3)
    assert shrink(2.0, 1.0, n=0, shrinkage=10) == 1.0
    assert shrink(2.0, 1.0, n=20, shrinkage=0) == 2.0


def _records() -> list[OutcomeRecord]:
    out: list[OutcomeRecord] = []
    # Juror a in deploy: 8 of 10 right.  Juror c in deploy: 1 of 10 right.
    for i in range(10):
        a_pos = "yes" if i < 8 else "no"
        c_pos = "yes" if i < 1 else "no"
        out.append(record(f"d{i}", "yes", [juror("a", a_pos), juror("c", c_pos)]))
    # Juror a in finance: 2 of 4 right (below min_evidence = 5).
    for i in range(4):
        out.append(
            record(f"f{i}", "yes", [juror("a", "yes" if i < 2 else "no")], category="finance")
        )
    return out


def test_propose_weights_shrinks_keeps_and_clips() -> None:
    stats = compute_stats(_records())
    current = {"*": {"a": 1.0}, "finance": {"a": 0.4}}
    proposal = propose_weights(
        stats,
        options_count_by_category={"deploy": 2, "finance": 2},
        min_evidence=5,
        shrinkage=10,
        current=current,
    )
    cells = {(c.juror, c.category): c for c in proposal.cells}
    # a global: 10 of 14 -> Beta(11, 5), mean 11/16 -> w = log(11/5).
    w_global = math.log(11 / 5)
    assert cells["a", "*"].raw_weight == pytest.approx(w_global)
    assert proposal.table["*"]["a"] == pytest.approx(w_global)
    # a deploy: 8 of 10 -> Beta(9, 3), mean 3/4 -> raw log 3;
    # shrunk (10*log 3 + 10*log(11/5)) / 20 = 0.94354.
    deploy = cells["a", "deploy"]
    assert deploy.accuracy.mean == pytest.approx(0.75)
    assert deploy.raw_weight == pytest.approx(math.log(3))
    expected = (10 * math.log(3) + 10 * w_global) / 20
    assert deploy.shrunk_weight == pytest.approx(expected)
    assert proposal.table["deploy"]["a"] == pytest.approx(expected)
    # Active deploy weight came from "*" = 1.0.
    assert deploy.active == 1.0
    assert deploy.change == pytest.approx(expected - 1.0)
    assert deploy.kept is None
    # a finance: n = 4 < 5 -> keeps the explicit active 0.4.
    finance = cells["a", "finance"]
    assert finance.kept is KeptReason.INSUFFICIENT_EVIDENCE
    assert finance.shrunk_weight is None
    assert (finance.active, finance.proposed, finance.change) == (0.4, 0.4, 0.0)
    assert proposal.table["finance"]["a"] == 0.4
    # c: 1 of 10 -> Beta(2, 10), mean 1/6 -> raw log(1/5) < 0, stored clipped at 0.
    assert cells["c", "deploy"].raw_weight == pytest.approx(math.log(1 / 5))
    assert proposal.table["deploy"]["c"] == 0.0
    assert proposal.models == {"a": "a-model", "c": "c-model"}


def test_insufficient_cell_without_explicit_weight_follows_global() -> None:
    stats = compute_stats(_records())
    proposal = propose_weights(
        stats,
        options_count_by_category={"deploy": 2, "finance": 2},
        min_evidence=5,
        shrinkage=10,
        current={},
    )
    finance = next(c for c in proposal.cells if (c.juror, c.category) == ("a", "finance"))
    assert finance.kept is KeptReason.INSUFFICIENT_EVIDENCE
    assert "finance" not in proposal.table
    # Active was neutral 1.0; it now inherits the new global weight log(11/5).
    assert finance.active == 1.0
    assert finance.proposed == pytest.approx(math.log(11 / 5))


def test_everything_is_kept_below_min_evidence() -> None:
    stats = compute_stats(_records())
    current = {"*": {"a": 1.3}}
    proposal = propose_weights(
        stats,
        options_count_by_category={"deploy": 2, "finance": 2},
        min_evidence=100,
        shrinkage=10,
        current=current,
    )
    assert proposal.table == current
    assert all(c.kept is KeptReason.INSUFFICIENT_EVIDENCE for c in proposal.cells)


def test_missing_option_count_is_an_error() -> None:
    stats = compute_stats(_records())
    with pytest.raises(ValueError, match="finance"):
        propose_weights(
            stats, options_count_by_category={"deploy": 2}, min_evidence=5, shrinkage=1, current={}
        )


def test_several_model_ids_need_current_models() -> None:
    records = [
        record("v1", "yes", [juror("a", "yes", model="old")]),
        record("v2", "yes", [juror("a", "no", model="new")]),
    ]
    stats = compute_stats(records)
    counts = {"deploy": 2}
    with pytest.raises(ValueError, match="several model ids"):
        propose_weights(
            stats, options_count_by_category=counts, min_evidence=1, shrinkage=0.0, current={}
        )
    proposal = propose_weights(
        stats,
        options_count_by_category=counts,
        min_evidence=1,
        shrinkage=0.0,
        current={},
        current_models={"a": "new"},
    )
    # Only the new model's evidence counts: 0 of 1 -> Beta(1, 2), mean 1/3 -> log(1/2) < 0.
    assert proposal.models == {"a": "new"}
    assert all(c.model == "new" for c in proposal.cells)
    assert proposal.table["*"]["a"] == 0.0


def test_drop_drifted_removes_and_reports_changed_models() -> None:
    table = {"*": {"a": 1.2, "b": 0.8, "c": 0.5, "d": 0.7}, "deploy": {"a": 2.0}}
    result = drop_drifted(
        table,
        recorded_models={"a": "m1", "b": "m2", "c": "m3"},
        current_models={"a": "m1-v2", "b": "m2", "d": "m4"},
    )
    assert result.table == {"*": {"b": 0.8}}
    dropped = {d.juror: d for d in result.dropped}
    assert dropped["a"].reason is DriftReason.MODEL_CHANGED
    assert (dropped["a"].recorded_model, dropped["a"].current_model) == ("m1", "m1-v2")
    assert dropped["a"].weights == {"*": 1.2, "deploy": 2.0}
    assert dropped["c"].reason is DriftReason.NOT_IN_CONFIG
    assert dropped["d"].reason is DriftReason.MODEL_UNKNOWN
    assert "b" not in dropped
