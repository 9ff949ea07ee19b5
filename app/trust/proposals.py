"""Compute proposals from the record: weights, agreement-only weights, calibration, rollback.

Everything here is a pure function of the record and the settings in force; storing, deciding
and auditing are the service's job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.config import JuryConfig
from app.deliberation.schemas import VerdictOut
from app.deliberation.vote import ALL_CATEGORIES, WeightsTable, weight_for
from app.trust.active import Effective, judge_models, juror_models
from app.trust.calibration import CalibrationMap, fit_by_category
from app.trust.choice import KEEP_OWN_P, choose_rules
from app.trust.drift import RollbackDecision
from app.trust.extract import Pairs, confidence_pairs
from app.trust.models import ProposalKind
from app.trust.records import OutcomeRecord, VerdictRecord
from app.trust.replay import Replay, replay
from app.trust.repository import StoredVerdict
from app.trust.schemas import ReplayOut, WeightChange
from app.trust.scoring import brier_score, expected_calibration_error, reliability_bins
from app.trust.statistics import compute_stats
from app.trust.unsupervised import estimate_unsupervised_weights
from app.trust.weights import propose_weights

Table = dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class Draft:
    """A computed proposal, ready to be stored."""

    kind: ProposalKind
    weights: Table
    models: dict[str, str]
    evidence: dict[str, Any]
    replay: ReplayOut
    changes: list[WeightChange]
    unsupervised: bool = False
    calibration: dict[str, Any] = field(default_factory=dict)
    calibration_models: dict[str, str] = field(default_factory=dict)
    target_version: int | None = None
    reason: str | None = None
    rules: dict[str, Any] = field(default_factory=dict)


def replay_out(result: Replay) -> ReplayOut:
    """Render a replay with the list of verdict ids that would flip."""
    return ReplayOut(
        n=result.n,
        undecidable=result.undecidable,
        correct_active=result.correct_active,
        correct_proposed=result.correct_proposed,
        accuracy_active=result.accuracy_active,
        accuracy_proposed=result.accuracy_proposed,
        flipped=[flip.verdict_id for flip in result.flips],
        flips=list(result.flips),
    )


def weight_changes(active: WeightsTable, proposed: WeightsTable) -> list[WeightChange]:
    """List every (category, juror) whose effective weight differs between the tables."""
    cells = sorted(
        {(c, j) for table in (active, proposed) for c, weights in table.items() for j in weights}
    )
    changes = []
    for category, juror in cells:
        before = max(weight_for(active, category, juror), 0.0)
        after = max(weight_for(proposed, category, juror), 0.0)
        if abs(after - before) > 1e-12:
            changes.append(
                WeightChange(
                    category=category,
                    juror=juror,
                    active=before,
                    proposed=after,
                    change=after - before,
                )
            )
    return changes


def options_counts(records: Sequence[VerdictRecord | OutcomeRecord]) -> dict[str, int]:
    """Return the usual number of options per category, and overall under "*"."""
    by_category: dict[str, Counter[int]] = {}
    overall: Counter[int] = Counter()
    for record in records:
        by_category.setdefault(record.category, Counter())[len(record.options)] += 1
        overall[len(record.options)] += 1
    counts = {c: counter.most_common(1)[0][0] for c, counter in by_category.items()}
    if overall:
        counts[ALL_CATEGORIES] = overall.most_common(1)[0][0]
    return counts


def _kept_models(current: Effective, config: JuryConfig) -> dict[str, str]:
    """Return the active version's models that still match the config."""
    configured = juror_models(config)
    return {j: m for j, m in current.models.items() if configured.get(j) == m}


def weights_draft(
    records: Sequence[OutcomeRecord],
    current: Effective,
    config: JuryConfig,
    *,
    min_evidence: int,
    shrinkage: float,
    calibration_min_evidence: int,
    own_rule_p: float = KEEP_OWN_P,
) -> Draft:
    """Propose each category's rule by cross-validation, over log-odds weights elsewhere.

    Where a category (or "*") has ``min_evidence`` outcomes, its weights are those of the rule
    that cross-validated best (never below the best single juror), with the map and the risk
    threshold of that rule's held-out confidence; elsewhere the log-odds cells stand.
    """
    proposal = propose_weights(
        compute_stats(records),
        options_count_by_category=options_counts(records),
        min_evidence=min_evidence,
        shrinkage=shrinkage,
        current=current.weights,
        current_models=juror_models(config),
    )
    choice = choose_rules(
        records,
        config,
        jurors=juror_models(config),
        min_evidence=min_evidence,
        calibration_min_evidence=calibration_min_evidence,
        active_maps=current.calibration,
        own_rule_p=own_rule_p,
    )
    table = {category: dict(weights) for category, weights in proposal.table.items()}
    table.update(choice.weights)
    evidence = {
        "method": "cross_validated_rule_choice_over_log_odds_of_posterior_accuracy",
        "n_records": len(records),
        "min_evidence": min_evidence,
        "shrinkage": shrinkage,
        "own_rule_p": own_rule_p,
        "cells": [cell.model_dump(mode="json") for cell in proposal.cells],
        "selection": choice.evidence(),
        "drift": [d.model_dump(mode="json") for d in current.dropped],
    }
    return Draft(
        kind=ProposalKind.WEIGHTS,
        weights=table,
        models={**_kept_models(current, config), **proposal.models},
        evidence=evidence,
        replay=replay_out(replay(records, active=current.weights, proposed=table)),
        changes=weight_changes(current.weights, table),
        calibration={c: m.model_dump(mode="json") for c, m in choice.calibration.items()},
        calibration_models=judge_models(config) if choice.calibration else {},
        rules=choice.rules,
    )


def unsupervised_draft(
    records: Sequence[VerdictRecord], current: Effective, config: JuryConfig, *, min_evidence: int
) -> Draft:
    """Propose weights from juror agreement alone (no outcomes), clearly marked as such."""
    configured = juror_models(config)
    usable = [
        r.model_copy(
            update={"jurors": tuple(j for j in r.jurors if configured.get(j.name) == j.model)}
        )
        for r in records
    ]
    estimate = estimate_unsupervised_weights(usable, min_evidence=min_evidence)
    table = {category: dict(weights) for category, weights in current.weights.items()}
    for category, weights in estimate.table.items():
        table.setdefault(category, {}).update(weights)
    models = {c.juror: c.model for c in estimate.cells}
    evidence = {
        "method": estimate.method,
        "unsupervised": True,
        "note": "No outcome is recorded: accuracies are estimated from agreement between "
        "jurors alone. Correlated jurors look more accurate than they are.",
        "n_verdicts": len(usable),
        "min_evidence": min_evidence,
        "cells": [cell.model_dump(mode="json") for cell in estimate.cells],
        "drift": [d.model_dump(mode="json") for d in current.dropped],
    }
    return Draft(
        kind=ProposalKind.WEIGHTS,
        weights=table,
        models={**_kept_models(current, config), **models},
        evidence=evidence,
        replay=ReplayOut(),
        changes=weight_changes(current.weights, table),
        unsupervised=True,
    )


def _apply(maps: Mapping[str, CalibrationMap], category: str, confidence: float) -> float:
    fitted = maps.get(category) or maps.get(ALL_CATEGORIES)
    return fitted.apply(confidence) if fitted is not None else confidence


def _calibrated_pairs(
    pairs: Mapping[str, Pairs],
    active: Mapping[str, CalibrationMap],
    proposed: Mapping[str, CalibrationMap],
) -> tuple[Pairs, Pairs]:
    """Return every verdict's (confidence, correct) under the active and the proposed maps."""
    before: Pairs = []
    after: Pairs = []
    for category, items in pairs.items():
        if category == ALL_CATEGORIES:
            continue
        before += [(_apply(active, category, conf), hit) for conf, hit in items]
        after += [(_apply(proposed, category, conf), hit) for conf, hit in items]
    return before, after


def _reliability(before: Pairs, after: Pairs) -> dict[str, Any]:
    """Return the reliability diagrams (bins with counts) under the active and proposed maps."""
    return {
        which: [b.model_dump(mode="json") for b in reliability_bins(scored)]
        for which, scored in (("active", before), ("proposed", after))
    }


def _calibration_replay(before: Pairs, after: Pairs) -> ReplayOut:
    """Score the verdict confidences under the active and the proposed maps."""
    if not before:
        return ReplayOut()
    correct = sum(hit for _, hit in before)
    accuracy = correct / len(before)
    return ReplayOut(
        n=len(before),
        correct_active=correct,
        correct_proposed=correct,
        accuracy_active=accuracy,
        accuracy_proposed=accuracy,
        ece_active=expected_calibration_error(before),
        ece_proposed=expected_calibration_error(after),
        brier_active=brier_score(before),
        brier_proposed=brier_score(after),
    )


def calibration_draft(
    rows: Sequence[tuple[StoredVerdict, VerdictOut]],
    current: Effective,
    config: JuryConfig,
    *,
    min_evidence: int,
) -> Draft:
    """Propose isotonic maps of the verdict confidence per category (and "*")."""
    judges = judge_models(config)
    pairs = confidence_pairs(rows, judges)
    fits = fit_by_category(pairs, min_evidence=min_evidence)
    maps = {c: fit.map for c, fit in fits.items() if fit.map is not None}
    fitted_for = {
        v.judge.name: v.judge.model for _, v in rows if judges.get(v.judge.name) == v.judge.model
    }
    before, after = _calibrated_pairs(pairs, current.calibration, maps)
    evidence = {
        "method": "isotonic_regression_of_verdict_confidence",
        "min_evidence": min_evidence,
        "fits": {c: fit.model_dump(mode="json") for c, fit in sorted(fits.items())},
        "judges": fitted_for,
        "reliability": _reliability(before, after),
    }
    return Draft(
        kind=ProposalKind.CALIBRATION,
        weights=current.weights,
        models=dict(current.models),
        evidence=evidence,
        replay=_calibration_replay(before, after),
        changes=[],
        calibration={c: m.model_dump(mode="json") for c, m in maps.items()},
        calibration_models=fitted_for if maps else {},
    )


def rollback_draft(
    records: Sequence[OutcomeRecord],
    current: Effective,
    target: Effective,
    decision: RollbackDecision,
) -> Draft:
    """Propose restoring ``target`` because the weighted vote got clearly worse."""
    before, after = decision.before, decision.after
    reason = (
        f"weighted-vote accuracy since version {current.version} was approved is "
        f"{after.successes}/{after.n}, against {before.successes}/{before.n} before; "
        f"P(worse) = {decision.probability_worse:.3f}"
    )
    return Draft(
        kind=ProposalKind.ROLLBACK,
        weights=target.weights,
        models=dict(target.models),
        evidence={"decider": "weighted_vote", **decision.model_dump(mode="json")},
        replay=replay_out(replay(records, active=current.weights, proposed=target.weights)),
        changes=weight_changes(current.weights, target.weights),
        calibration={c: m.model_dump(mode="json") for c, m in target.calibration.items()},
        calibration_models=dict(target.calibration_models),
        # 0 names the neutral weights, as in POST /trust/weights/rollback.
        target_version=target.version if target.version is not None else 0,
        reason=reason,
    )
