"""Small builders of outcome records for the trust tests."""

from __future__ import annotations

from datetime import datetime

from app.trust.records import JurorRecord, OutcomeRecord

YES_NO = ("yes", "no")


def juror(
    name: str,
    final: str | None,
    *,
    round1: str | None = None,
    confidence: float | None = None,
    round1_confidence: float | None = None,
    model: str | None = None,
) -> JurorRecord:
    """Build a juror record; round 1 defaults to the final position (no shift)."""
    return JurorRecord(
        name=name,
        model=model or f"{name}-model",
        round1_position=final if round1 is None else round1,
        final_position=final,
        round1_confidence=round1_confidence,
        final_confidence=confidence,
    )


def record(
    verdict_id: str,
    correct: str,
    jurors: list[JurorRecord],
    *,
    category: str = "deploy",
    options: tuple[str, ...] = YES_NO,
    judge: str | None = None,
    judge_confidence: float | None = None,
    weighted: str | None = None,
    decided_at: datetime | None = None,
) -> OutcomeRecord:
    """Build an outcome record."""
    return OutcomeRecord(
        verdict_id=verdict_id,
        category=category,
        options=options,
        correct=correct,
        jurors=tuple(jurors),
        judge_verdict=judge,
        judge_confidence=judge_confidence,
        weighted_vote=weighted,
        decided_at=decided_at,
    )
