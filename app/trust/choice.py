"""The rule a weights proposal makes: per category, the CV-chosen rule, its map and threshold.

For every category with enough outcomes (and for "*", all of them), ``select_rule`` scores the
candidates by cross-validation and picks one. When the weighted vote gives the verdict, its
confidence is the vote share under the new weights, so a map of the old confidence no longer
fits: the map is fitted anew on the chosen rule's held-out decisions (never in-sample ones).
When the judge gives it, the judge's confidence does not depend on the weights, and the active
map stays. On calibrated held-out confidence, fixed-sequence testing picks the category's
guaranteed-risk threshold; a fresh map is fitted on one half of the held-out items and the
threshold tested on the other, so the test never sees the outcomes its map was fitted on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.config import JuryConfig
from app.deliberation.rules import Ballot
from app.deliberation.vote import ALL_CATEGORIES
from app.trust.calibration import CalibrationMap, fit_calibration
from app.trust.records import OutcomeRecord
from app.trust.risk import RiskThreshold, binomial_cdf, fixed_sequence_threshold
from app.trust.scoring import expected_calibration_error
from app.trust.selection import Case, CategorySelection, score, select_rule

Pair = tuple[float, bool]
SPLIT_SALT = "jury-calibration-half"
"""Salts the fixed split of held-out items into a calibration half and a risk-test half."""


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


KEEP_OWN_P = 0.05
"""A category keeps its own rule only when a one-sided sign test gives p at most this."""


def beats(own: Sequence[bool], pooled: Sequence[bool], *, p: float = KEEP_OWN_P) -> bool:
    """Whether ``own`` is right significantly more often than ``pooled`` on the same items.

    The exact sign (McNemar) test on the discordant items: ``wins`` where only ``own`` is right,
    ``losses`` where only ``pooled`` is. Under "no better", ``wins`` ~ Binomial(wins + losses,
    1/2); ``own`` is kept when P(X >= wins) <= p, i.e. P(X <= losses) <= p by symmetry.
    """
    wins = sum(a and not b for a, b in zip(own, pooled, strict=True))
    losses = sum(b and not a for a, b in zip(own, pooled, strict=True))
    return wins > losses and binomial_cdf(losses, wins + losses, 0.5) <= p


def _defer_to_pooled(
    own: CategorySelection, pooled: CategorySelection, indices: Sequence[int], *, p: float
) -> CategorySelection:
    """Keep a category's own rule only where it beats the "*" rule significantly.

    A small category picks its best rule from few outcomes, and noise can crown a juror that
    only looks best there: on LLMBar's Manual items PaLM 2 led GPT-4 by one training ballot,
    then scored 0.635 to GPT-4's 0.923 on the held-out half. So the "*" rule, scored held-out on
    the same items, is the default, and the category's own rule must beat it by a paired sign
    test (``beats``): shrinkage toward the pooled rule, the burden of proof on the rule learned
    from less.
    """
    held = tuple(pooled.held_out[i] for i in indices)
    groups = tuple(pooled.held_out_groups[i] for i in indices)
    right = sum(hit for _, hit in held)
    rule = f"global:{pooled.chosen}"
    row = score(rule, right, len(indices))
    candidates = (*own.candidates, row)
    if beats([hit for _, hit in own.held_out], [hit for _, hit in held], p=p):
        return own.model_copy(update={"candidates": candidates})
    return own.model_copy(
        update={
            "candidates": candidates,
            "chosen": rule,
            "verdict_source": pooled.verdict_source,
            "weights": dict(pooled.weights),
            "held_out": held,
            "held_out_groups": groups,
        }
    )


def _selections(
    records: Sequence[OutcomeRecord],
    jurors: Mapping[str, str],
    min_evidence: int,
    own_rule_p: float,
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
        selections[category] = _defer_to_pooled(own, pooled, indices, p=own_rule_p)
    return selections


def _halves(selection: CategorySelection) -> tuple[list[Pair], list[Pair]]:
    """Split the held-out pairs by item into a half to fit the map and a half to test risk.

    Fixed-sequence testing holds its 1 - delta guarantee only for a sequence fixed before the
    outcomes it tests; a map fitted on those same outcomes would move the thresholds with them
    (isotonic pooling reports exactly the observed hit rate, the optimistic side). Both orders
    of an item land in the same half, and an item's half depends on the item alone, so it is the
    same in every category and in "*": a category may test on its half with the "*" map.
    """
    fit_on: list[Pair] = []
    test_on: list[Pair] = []
    for pair, group in zip(selection.held_out, selection.held_out_groups, strict=True):
        (fit_on if fits_the_map(group) else test_on).append(pair)
    return fit_on, test_on


def fits_the_map(group: str) -> bool:
    """Whether an item's outcomes fit calibration maps (else they test risk thresholds)."""
    return hashlib.sha256(f"{SPLIT_SALT}:{group}".encode()).digest()[0] % 2 == 0


def _map_and_test_pairs(
    selection: CategorySelection,
    active: CalibrationMap | None,
    pooled: CalibrationMap | None,
    calibration_min_evidence: int,
) -> tuple[CalibrationMap | None, CalibrationMap | None, list[Pair]]:
    """Return the fresh map (if any), the map in use and the pairs the threshold is tested on.

    A weighted-vote verdict's confidence is the vote share under the new weights, so its map is
    fitted afresh on one half of the held-out pairs and the threshold tested on the other. A
    category with too little evidence for a map of its own is served with the fresh "*" map
    (``pooled``), so its threshold is tested with that map, on its own test half (which the
    "*" map never saw). The judge's confidence does not depend on the weights: the active map
    stays and every pair tests.
    """
    pairs = list(selection.held_out)
    if selection.verdict_source != "weighted_vote":
        return None, active, pairs
    fit_on, test_on = _halves(selection)
    fitted = fit_calibration(fit_on, min_evidence=calibration_min_evidence).map
    if fitted is not None:
        return fitted, fitted, test_on
    if pooled is not None:
        return None, pooled, test_on
    return None, active, pairs


def choose_rules(
    records: Sequence[OutcomeRecord],
    config: JuryConfig,
    *,
    jurors: Mapping[str, str],
    min_evidence: int,
    calibration_min_evidence: int,
    active_maps: Mapping[str, CalibrationMap],
    own_rule_p: float = KEEP_OWN_P,
) -> RuleChoice:
    """Choose every category's rule where it has ``min_evidence`` outcomes (and "*")."""
    choice = RuleChoice()
    selections = _selections(records, jurors, min_evidence, own_rule_p)
    for category, selection in selections.items():
        policy = config.policy(None if category == ALL_CATEGORIES else category)
        active = active_maps.get(category) or active_maps.get(ALL_CATEGORIES)
        pooled = choice.calibration.get(ALL_CATEGORIES)
        fitted, used, tested = _map_and_test_pairs(
            selection, active, pooled, calibration_min_evidence
        )
        calibrated = [(used.apply(conf) if used is not None else conf, hit) for conf, hit in tested]
        risk = fixed_sequence_threshold(
            calibrated, alpha=policy.risk_alpha, delta=policy.risk_delta
        )
        choice.selections[category] = selection
        choice.risks[category] = risk
        choice.weights[category] = dict(selection.weights)
        if fitted is not None:
            choice.calibration[category] = fitted
        choice.ece[category] = {
            "before": expected_calibration_error(tested),
            "after": expected_calibration_error(calibrated),
        }
        choice.rules[category] = {
            "rule": selection.chosen,
            "verdict_source": selection.verdict_source,
            "risk": risk.model_dump(mode="json"),
        }
    return choice
