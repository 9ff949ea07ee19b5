"""The rule a weights proposal makes: per category, the CV-chosen rule, its map and threshold.

For every category with enough outcomes (and for "*", all of them), ``select_rule`` scores the
candidates by cross-validation and picks one. When the weighted vote gives the verdict, its
confidence is the vote share under the new weights, so a map of the old confidence no longer
fits: the map is fitted anew on the chosen rule's held-out decisions (never in-sample ones).
When the judge gives it, the judge's confidence does not depend on the weights, and the active
map stays. On that calibrated held-out confidence, fixed-sequence testing picks the category's
guaranteed-risk threshold. A fresh map is fitted on the same held-out pairs the threshold is
tested on; being monotone, it only relabels the thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.config import JuryConfig
from app.deliberation.rules import Ballot
from app.deliberation.vote import ALL_CATEGORIES
from app.trust.calibration import CalibrationMap, fit_calibration
from app.trust.records import OutcomeRecord
from app.trust.risk import RiskThreshold, fixed_sequence_threshold
from app.trust.scoring import expected_calibration_error
from app.trust.selection import Case, CategorySelection, score, select_rule


@dataclass(frozen=True, slots=True)
class RuleChoice:
    """What the chosen rules change: weights per category, rules, maps, and the evidence."""

    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, CalibrationMap] = field(default_factory=dict)
    selections: dict[str, CategorySelection] = field(default_factory=dict)
    risks: dict[str, RiskThreshold] = field(default_factory=dict)
    ece: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        """Return the comparison tables and thresholds, per category, for the proposal."""
        return {
            category: {
                **selection.model_dump(mode="json"),
                "risk": self.risks[category].model_dump(mode="json"),
                "ece": self.ece.get(category, {}),
            }
            for category, selection in sorted(self.selections.items())
        }


def cases_of(records: Sequence[OutcomeRecord], jurors: Mapping[str, str]) -> list[Case]:
    """Turn outcome records into CV cases over the configured jurors (name and model)."""
    cases = []
    for record in records:
        positions = {
            j.name: j.final_position for j in record.jurors if jurors.get(j.name) == j.model
        }
        if not any(position is not None for position in positions.values()):
            continue  # nobody voted: no rule can decide it
        cases.append(
            Case(
                ballot=Ballot(positions=positions, options=record.options, correct=record.correct),
                group=record.group or record.verdict_id,
                judge=record.judge_verdict,
                judge_confidence=record.judge_confidence,
            )
        )
    return cases


def _pooled(records: Sequence[OutcomeRecord], jurors: Mapping[str, str]) -> list[tuple[str, Case]]:
    """Return every record's (category, case), in record order."""
    pairs = []
    for record in records:
        cases = cases_of([record], jurors)
        if cases:
            pairs.append((record.category, cases[0]))
    return pairs


def _defer_to_pooled(
    own: CategorySelection, pooled: CategorySelection, indices: Sequence[int]
) -> CategorySelection:
    """Keep a category's own rule only where it beats the "*" rule on its held-out items.

    A small category picks its best rule from few outcomes, and noise can crown a juror that
    only looks best there; the "*" rule, scored held-out on the same items, is the candidate
    it must beat (ties go to "*": fewer choices learned from less).
    """
    held = tuple(pooled.held_out[i] for i in indices)
    right = sum(hit for _, hit in held)
    rule = f"global:{pooled.chosen}"
    row = score(rule, right, len(indices))
    candidates = (*own.candidates, row)
    if sum(hit for _, hit in own.held_out) > right:
        return own.model_copy(update={"candidates": candidates})
    return own.model_copy(
        update={
            "candidates": candidates,
            "chosen": rule,
            "verdict_source": pooled.verdict_source,
            "weights": dict(pooled.weights),
            "held_out": held,
        }
    )


def _selections(
    records: Sequence[OutcomeRecord], jurors: Mapping[str, str], min_evidence: int
) -> dict[str, CategorySelection]:
    pairs = _pooled(records, jurors)
    if len(pairs) < max(min_evidence, 2):
        return {}
    pooled = select_rule(ALL_CATEGORIES, [case for _, case in pairs])
    selections = {ALL_CATEGORIES: pooled}
    for category in sorted({c for c, _ in pairs}):
        indices = [i for i, (c, _) in enumerate(pairs) if c == category]
        if len(indices) < max(min_evidence, 2):
            continue
        own = select_rule(category, [pairs[i][1] for i in indices])
        selections[category] = _defer_to_pooled(own, pooled, indices)
    return selections


def choose_rules(
    records: Sequence[OutcomeRecord],
    config: JuryConfig,
    *,
    jurors: Mapping[str, str],
    min_evidence: int,
    calibration_min_evidence: int,
    active_maps: Mapping[str, CalibrationMap],
) -> RuleChoice:
    """Choose every category's rule where it has ``min_evidence`` outcomes (and "*")."""
    choice = RuleChoice()
    for category, selection in _selections(records, jurors, min_evidence).items():
        policy = config.policy(None if category == ALL_CATEGORIES else category)
        fitted: CalibrationMap | None = None
        if selection.verdict_source == "weighted_vote":
            pairs = list(selection.held_out)
            fitted = fit_calibration(pairs, min_evidence=calibration_min_evidence).map
        used = fitted or active_maps.get(category) or active_maps.get(ALL_CATEGORIES)
        calibrated = [
            (used.apply(conf) if used is not None else conf, hit)
            for conf, hit in selection.held_out
        ]
        risk = fixed_sequence_threshold(
            calibrated, alpha=policy.risk_alpha, delta=policy.risk_delta
        )
        choice.selections[category] = selection
        choice.risks[category] = risk
        choice.weights[category] = dict(selection.weights)
        if fitted is not None:
            choice.calibration[category] = fitted
        choice.ece[category] = {
            "before": expected_calibration_error(list(selection.held_out)),
            "after": expected_calibration_error(calibrated),
        }
        choice.rules[category] = {
            "rule": selection.chosen,
            "verdict_source": selection.verdict_source,
            "risk": risk.model_dump(mode="json"),
        }
    return choice
