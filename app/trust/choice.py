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
from app.trust.selection import Case, CategorySelection, select_rule


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


def _by_category(
    records: Sequence[OutcomeRecord], jurors: Mapping[str, str]
) -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = {ALL_CATEGORIES: cases_of(records, jurors)}
    for category in sorted({r.category for r in records}):
        grouped[category] = cases_of([r for r in records if r.category == category], jurors)
    return grouped


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
    for category, cases in _by_category(records, jurors).items():
        if len(cases) < max(min_evidence, 2):
            continue
        selection = select_rule(category, cases)
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
