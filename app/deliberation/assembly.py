"""Turn a finished transcript into the public verdict: aggregates, dissent, escalation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.core.config import NO_JUDGE, CategoryPolicy, ModelSpec
from app.deliberation.aggregation import Vote, majority, weighted_share, weighted_vote
from app.deliberation.answers import JudgeAnswer, JurorAnswer
from app.deliberation.calls import CallOutcome
from app.deliberation.protocol import JurorTurn, Transcript
from app.deliberation.schemas import (
    Action,
    Baselines,
    Dissent,
    EscalateReason,
    FailureOut,
    JudgeOut,
    LabelCalibrationOut,
    PositionOut,
    RiskOut,
    RoundOut,
    SequentialOut,
    Shift,
    Tokens,
    Usage,
    VerdictOut,
    VerdictSource,
)


class ConfidenceMap(Protocol):
    """An approved calibration map from raw to calibrated verdict confidence."""

    def apply(self, confidence: float) -> float:
        """Return the calibrated confidence."""
        ...


@dataclass(frozen=True, slots=True)
class RiskBound:
    """A category's approved guaranteed-risk setting: alpha, delta, threshold (None: none yet)."""

    alpha: float
    delta: float
    threshold: float | None = None
    n: int = 0

    def out(self, confidence: float) -> RiskOut:
        """Return where a verdict of this confidence stands against the threshold."""
        covered = self.threshold is not None and confidence >= self.threshold
        return RiskOut(
            alpha=self.alpha,
            delta=self.delta,
            threshold=self.threshold,
            covered=covered,
            guaranteed=self.threshold is not None,
            n=self.n,
        )


@dataclass(frozen=True, slots=True)
class Docket:
    """What the service knows about a verdict besides its transcript."""

    verdict_id: str
    created_at: datetime
    question: str
    options: tuple[str, ...]
    category: str
    panel: str
    # None: the panel has no judge (judge: none); the aggregation rule gives the verdict.
    judge: ModelSpec | None
    judge_recused: bool
    recused: tuple[str, ...]
    policy: CategoryPolicy
    weights: Mapping[str, float]
    weights_version: int | None
    metadata: Mapping[str, Any]
    # The active calibration of the verdict confidence for this category and judge, if any.
    calibration: ConfidenceMap | None = None
    # The approved verdict source of the category (a proposal may switch it by evidence).
    verdict_source: VerdictSource = "judge"
    risk: RiskBound | None = None
    action: Action | None = None
    # The kinds of secret redacted from the input before any model saw it.
    redacted: tuple[str, ...] = ()


def position_out(turn: JurorTurn) -> PositionOut:
    """Render one juror turn for the response."""
    outcome = turn.outcome
    answer = outcome.answer
    return PositionOut(
        juror=outcome.spec.name,
        model=outcome.spec.model,
        family=outcome.spec.family,
        position=answer.position if answer else None,
        confidence=answer.confidence if answer else None,
        reasoning=answer.reasoning if answer else None,
        evidence=answer.evidence if answer else None,
        changed=turn.changed,
        latency_ms=round(outcome.latency_ms, 3),
        tokens=Tokens(prompt=outcome.prompt_tokens, completion=outcome.completion_tokens),
        cost_usd=outcome.cost_usd,
        attempts=outcome.attempts,
        failure=outcome.failure,
    )


def shifts_of(transcript: Transcript) -> list[Shift]:
    """Return every position change, in round order."""
    return [
        Shift.model_validate(
            {
                "juror": turn.juror,
                "round": number,
                "from": turn.previous,
                "to": turn.outcome.answer.position,
                "reasoning": turn.outcome.answer.reasoning,
            }
        )
        for number, turns in enumerate(transcript.rounds, start=1)
        for turn in turns
        if turn.changed and turn.outcome.answer is not None and turn.previous is not None
    ]


def failures_of(transcript: Transcript) -> list[FailureOut]:
    """Return every failed juror and judge call."""
    outcomes: list[CallOutcome[Any]] = [t.outcome for turns in transcript.rounds for t in turns]
    if transcript.judge is not None:
        outcomes.append(transcript.judge)
    return [
        FailureOut(
            juror=o.spec.name,
            model=o.spec.model,
            round=o.round_number,
            kind=o.failure.kind,
            detail=o.failure.detail,
        )
        for o in outcomes
        if o.failure is not None
    ]


def usage_of(transcript: Transcript) -> Usage:
    """Sum tokens and cost over every call."""
    outcomes: list[CallOutcome[Any]] = [t.outcome for turns in transcript.rounds for t in turns]
    if transcript.judge is not None:
        outcomes.append(transcript.judge)
    prompt = sum(o.prompt_tokens for o in outcomes)
    completion = sum(o.completion_tokens for o in outcomes)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost_usd=sum(o.cost_usd for o in outcomes),
        calls=sum(o.attempts for o in outcomes),
    )


def no_judge_out() -> JudgeOut:
    """Render the judge of a panel that has none: the vote decides, no fallback."""
    return JudgeOut(
        name=NO_JUDGE,
        model=NO_JUDGE,
        family=NO_JUDGE,
        verdict=None,
        confidence=None,
        disagreement=None,
    )


def judge_out(docket: Docket, transcript: Transcript, fallback_winner: str) -> JudgeOut:
    """Render the judge's decision, or the weighted-vote fallback when it has none."""
    if docket.judge is None:
        return no_judge_out()
    outcome = transcript.judge
    answer: JudgeAnswer | None = outcome.answer if outcome is not None else None
    by_label = {label: name for name, label in transcript.judge_labels.items()}
    base = JudgeOut(
        name=docket.judge.name,
        model=docket.judge.model,
        family=docket.judge.family,
        verdict=answer.verdict if answer else None,
        confidence=answer.confidence if answer else None,
        disagreement=answer.disagreement if answer else None,
        dissenter_notes={
            by_label[note.juror]: note.note
            for note in (answer.dissenter_notes if answer else [])
            if note.juror in by_label
        },
        latency_ms=round(outcome.latency_ms, 3) if outcome else 0.0,
        tokens=Tokens(
            prompt=outcome.prompt_tokens if outcome else 0,
            completion=outcome.completion_tokens if outcome else 0,
        ),
        failure=outcome.failure if outcome else None,
        calibration=calibration_out(outcome) if outcome else None,
    )
    if answer is not None:
        return base
    reason = "judge recused" if docket.judge_recused else "judge failed"
    if outcome is not None and outcome.failure is not None:
        reason = f"judge failed: {outcome.failure.kind.value}"
    return base.model_copy(
        update={"fallback": True, "fallback_reason": f"{reason}; weighted vote {fallback_winner}"}
    )


def calibration_out(outcome: CallOutcome[JudgeAnswer]) -> LabelCalibrationOut | None:
    """Render a calibrated judge's label calibration, or why it was skipped."""
    if outcome.calibration is not None:
        return LabelCalibrationOut.model_validate(outcome.calibration.as_record())
    if outcome.calibration_skipped is not None:
        return LabelCalibrationOut(skipped=outcome.calibration_skipped)
    return None


def escalation(
    policy: CategoryPolicy,
    *,
    confidence: float,
    degraded: bool,
    fallback: bool,
    unanimous: bool,
    risk: RiskOut | None = None,
) -> list[EscalateReason]:
    """Apply the category's policy; every reason that holds is listed."""
    reasons: list[EscalateReason] = []
    if risk is not None and risk.guaranteed and not risk.covered:
        reasons.append("below_risk_threshold")
    if confidence < policy.escalate_below_confidence:
        reasons.append("low_confidence")
    if degraded and policy.escalate_when_degraded:
        reasons.append("degraded_panel")
    if fallback and policy.escalate_on_judge_fallback:
        reasons.append("judge_fallback")
    if unanimous and policy.critical:
        reasons.append("unanimous_on_critical")
    if not unanimous and policy.escalate_on_split:
        reasons.append("split_panel")
    return reasons


def dissent_of(
    final: Mapping[str, JurorAnswer],
    specs: Mapping[str, ModelSpec],
    verdict: str,
    notes: Mapping[str, str],
) -> list[Dissent]:
    """Return the jurors whose final position differs from the verdict."""
    return [
        Dissent(
            juror=name,
            model=specs[name].model,
            position=answer.position,
            confidence=answer.confidence,
            reasoning=answer.reasoning,
            judge_note=notes.get(name),
        )
        for name, answer in final.items()
        if answer.position != verdict
    ]


def assemble(
    docket: Docket,
    transcript: Transcript,
    specs: Mapping[str, ModelSpec],
    *,
    latency_ms: float,
) -> VerdictOut:
    """Build the public verdict from the transcript."""
    final_votes: Sequence[Vote] = transcript.final_votes()
    weighted = weighted_vote(final_votes, docket.options, docket.weights)
    # Quorum guarantees at least one valid position.
    assert weighted is not None
    assert weighted.winner is not None
    winner = weighted.winner
    judge = judge_out(docket, transcript, winner)
    source = verdict_source(docket, judge)
    verdict = judge.verdict if source == "judge" and judge.verdict else winner
    raw = judge.confidence if source == "judge" and judge.confidence is not None else weighted.share
    # The calibrated confidence is the one agents act on, so the escalation policy reads it.
    confidence = docket.calibration.apply(raw) if docket.calibration is not None else raw
    risk = docket.risk.out(confidence) if docket.risk is not None else None
    failures = failures_of(transcript)
    # Degraded means jurors were missing; a failed judge is reported as ``judge.fallback``.
    degraded = any(failure.juror != judge.name for failure in failures)
    unanimous = len({vote.position for vote in final_votes}) == 1
    reasons = escalation(
        docket.policy,
        confidence=confidence,
        degraded=degraded,
        fallback=judge.fallback,
        unanimous=unanimous,
        risk=risk,
    )
    return VerdictOut(
        id=docket.verdict_id,
        status="completed",
        created_at=docket.created_at,
        question=docket.question,
        options=list(docket.options),
        category=docket.category,
        panel=docket.panel,
        verdict=verdict,
        confidence=confidence,
        raw_confidence=raw,
        confidence_calibrated=docket.calibration is not None,
        agreement=weighted_share(final_votes, verdict, docket.weights, docket.options),
        unanimous=unanimous,
        escalate=bool(reasons),
        escalate_reasons=reasons,
        dissent=dissent_of(transcript.final_answers(), specs, verdict, judge.dissenter_notes),
        disagreement=judge.disagreement,
        shifts=shifts_of(transcript),
        rounds=rounds_out(transcript),
        stop_reason=transcript.stop_reason,
        budget_limited=transcript.stop_reason == "budget",
        baselines=Baselines(
            round1_majority=majority(transcript.round_votes(1)),
            final_majority=majority(final_votes),
            weighted_vote=winner,
            judge=judge.verdict,
        ),
        judge=judge,
        verdict_source=source,
        risk=risk,
        sequential=sequential_out(transcript),
        degraded=degraded,
        failures=failures,
        recused=list(docket.recused),
        usage=usage_of(transcript),
        latency_ms=round(latency_ms, 3),
        weights_version=docket.weights_version,
        metadata=dict(docket.metadata),
        action=docket.action,
        redacted=list(docket.redacted),
    )


def sequential_out(transcript: Transcript) -> SequentialOut | None:
    """Render who a sequential verdict convened and why it stopped (None: not sequential)."""
    convening = transcript.convening
    if convening is None:
        return None
    return SequentialOut(
        order=list(convening.order),
        convened=list(convening.convened),
        not_convened=[name for name in convening.order if name not in convening.convened],
        stop=convening.stop,
        leader=convening.leader,
        posterior=round(convening.posterior, 6),
        target=convening.target,
        target_source=convening.target_source,
    )


def verdict_source(docket: Docket, judge: JudgeOut) -> VerdictSource:
    """Return what gives the verdict: the judge when it answered and its category trusts it."""
    decided = not judge.fallback and judge.verdict is not None and judge.confidence is not None
    return "judge" if decided and docket.verdict_source == "judge" else "weighted_vote"


def rounds_out(transcript: Transcript) -> list[RoundOut]:
    """Render every round."""
    return [
        RoundOut(number=number, positions=[position_out(turn) for turn in turns])
        for number, turns in enumerate(transcript.rounds, start=1)
    ]
