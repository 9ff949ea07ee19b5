"""Read stored verdict responses into the plain records the trust statistics work on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from app.deliberation.schemas import PositionOut, VerdictOut
from app.deliberation.vote import ALL_CATEGORIES
from app.trust.records import JurorRecord, OutcomeRecord, VerdictRecord
from app.trust.repository import StoredVerdict

Pairs = list[tuple[float, bool]]


def juror_records(verdict: VerdictOut) -> tuple[JurorRecord, ...]:
    """Return each juror's round-1 and final positions, in the order they sat.

    The final position is the juror's latest *valid* one: the same position the weighted
    vote of the verdict counted, so that a replay re-decides exactly what was decided.
    """
    first: dict[str, PositionOut] = {}
    last_valid: dict[str, PositionOut] = {}
    for round_ in verdict.rounds:
        for position in round_.positions:
            if round_.number == 1:
                first[position.juror] = position
            if position.position is not None:
                last_valid[position.juror] = position
    names = list(dict.fromkeys([*first, *last_valid]))
    return tuple(_juror(name, first.get(name), last_valid.get(name)) for name in names)


def _juror(name: str, first: PositionOut | None, last: PositionOut | None) -> JurorRecord:
    seen = last or first
    assert seen is not None  # a name is listed only once it has sat in some round
    return JurorRecord(
        name=name,
        model=seen.model,
        round1_position=first.position if first else None,
        round1_confidence=first.confidence if first else None,
        final_position=last.position if last else None,
        final_confidence=last.confidence if last else None,
    )


def parse(stored: StoredVerdict) -> VerdictOut:
    """Validate a stored response back into the public verdict."""
    return VerdictOut.model_validate(stored.response)


def outcome_record(stored: StoredVerdict, verdict: VerdictOut) -> OutcomeRecord:
    """Build the outcome record of a verdict whose correct option is known."""
    if stored.correct is None:
        raise ValueError(f"verdict {stored.verdict_id} has no outcome")
    return OutcomeRecord(
        verdict_id=stored.verdict_id,
        category=stored.category,
        options=tuple(verdict.options),
        correct=stored.correct,
        jurors=juror_records(verdict),
        judge_verdict=verdict.judge.verdict,
        judge_confidence=verdict.judge.confidence,
        round1_majority=verdict.baselines.round1_majority,
        final_majority=verdict.baselines.final_majority,
        weighted_vote=verdict.baselines.weighted_vote,
        decided_at=stored.created_at,
        group=_group(verdict),
    )


def _group(verdict: VerdictOut) -> str | None:
    """Return the item a verdict judged (``metadata.item_id``), shared by its presentations."""
    item = verdict.metadata.get("item_id")
    return item if isinstance(item, str) and item else None


def verdict_record(stored: StoredVerdict, verdict: VerdictOut) -> VerdictRecord:
    """Build the agreement-only record of a verdict (no outcome needed)."""
    return VerdictRecord(
        verdict_id=stored.verdict_id,
        category=stored.category,
        options=tuple(verdict.options),
        jurors=juror_records(verdict),
    )


def raw_confidence(verdict: VerdictOut) -> float:
    """Return the verdict's uncalibrated confidence (older verdicts only have one)."""
    return verdict.raw_confidence if verdict.raw_confidence is not None else verdict.confidence


def confidence_pairs(
    rows: Sequence[tuple[StoredVerdict, VerdictOut]], judges: Mapping[str, str]
) -> dict[str, Pairs]:
    """Collect (raw verdict confidence, verdict was right) per category and under "*".

    Only verdicts decided by a judge whose model is still the configured one count: a map
    fitted for one judge model says nothing about another.
    """
    pairs: dict[str, Pairs] = defaultdict(list)
    for stored, verdict in rows:
        if judges.get(verdict.judge.name) != verdict.judge.model or stored.correct is None:
            continue
        pair = (raw_confidence(verdict), verdict.verdict == stored.correct)
        pairs[stored.category].append(pair)
        pairs[ALL_CATEGORIES].append(pair)
    return dict(pairs)


def without_old_models(
    jurors: tuple[JurorRecord, ...], current: Mapping[str, str]
) -> tuple[JurorRecord, ...]:
    """Keep only jurors whose recorded model is the configured one."""
    return tuple(j for j in jurors if current.get(j.name) == j.model)
