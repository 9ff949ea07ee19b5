"""What an agent gets when Jury cannot decide: a refusal (fail closed) or a labelled answer.

Each category declares its ``fail_mode``. ``closed`` (the default) answers 503 ``no_quorum``, as
Jury always has. ``open`` answers the category's ``fail_open_option`` (the request's first option
unless set), marked so that it can never pass for a deliberated approval: ``fail_mode: "open"``,
confidence 0, ``escalate`` with reason ``fail_open``, and counted apart in
``jury_fail_open_verdicts_total`` once, when the verdict is recorded ``no_quorum``. The record
keeps the truth: the verdict's row stays ``no_quorum`` with its partial positions, and reading it
back (``GET /verdicts/{id}``, the MCP ``get_verdict``) shows that truth with the labelled answer
beside it in ``fail_open``, so an agent that asked asynchronously gets the same answer as one
that waited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.core import metrics
from app.core.config import NO_JUDGE, JuryConfig
from app.deliberation.schemas import (
    Action,
    Baselines,
    JudgeOut,
    Usage,
    VerdictOut,
    VerdictRequest,
)
from app.security.redaction import redacted_kinds
from app.verdicts.record.tables import Verdict
from app.verdicts.record.verdict import no_quorum_error


@dataclass(frozen=True, slots=True)
class Undecided:
    """A verdict Jury could not decide, with what the fail-open answer must repeat."""

    verdict_id: str
    created_at: datetime
    question: str
    options: Sequence[str]
    category: str
    panel: str
    detail: str
    action: Action | None = None
    redacted: Sequence[str] = ()


def fail_open_option(config: JuryConfig, category: str, options: Sequence[str]) -> str | None:
    """Return the option a category fails open to, or None when it fails closed."""
    policy = config.policy(category)
    if policy.fail_mode != "open" or not options:
        return None
    option = policy.fail_open_option or options[0]
    # A fail-open answer must be one of the options asked; else there is none to give.
    return option if option in options else None


def count_fail_open(config: JuryConfig, category: str, panel: str, options: Sequence[str]) -> None:
    """Count an undecided verdict that fails open (called once, when it is recorded)."""
    if fail_open_option(config, category, options) is not None:
        metrics.FAIL_OPEN.labels(_category_label(config, category), panel).inc()


def recorded_fail_open(config: JuryConfig, row: Verdict) -> VerdictOut | None:
    """Return the fail-open answer of a recorded verdict, or None (decided, or fails closed).

    The category is asked first, so that a fail-closed row's stored request is never parsed.
    """
    if row.status != "no_quorum" or fail_open_option(config, row.category, row.options) is None:
        return None
    return fail_open(config, undecided_of(row))


def undecided_of(row: Verdict) -> Undecided:
    """Return what the fail-open answer of a recorded ``no_quorum`` verdict must repeat."""
    request = VerdictRequest.model_validate(row.request)
    return Undecided(
        verdict_id=row.id,
        created_at=row.created_at,
        question=row.question,
        options=row.options,
        category=row.category,
        panel=row.panel,
        detail=no_quorum_error(row.error or {"valid": 0, "quorum": 0}).detail,
        action=request.action,
        redacted=redacted_kinds(request),
    )


def fail_open(config: JuryConfig, undecided: Undecided) -> VerdictOut | None:
    """Return the category's fail-open answer, or None when the category fails closed."""
    option = fail_open_option(config, undecided.category, undecided.options)
    if option is None:
        return None
    panel = config.panels.get(undecided.panel) or config.panels[config.default_panel]
    judge = config.judge_for(panel)
    return VerdictOut(
        id=undecided.verdict_id,
        status="completed",
        created_at=undecided.created_at,
        question=undecided.question,
        options=list(undecided.options),
        category=undecided.category,
        panel=undecided.panel,
        verdict=option,
        confidence=0.0,
        raw_confidence=None,
        agreement=0.0,
        unanimous=False,
        escalate=True,
        escalate_reasons=["fail_open"],
        dissent=[],
        disagreement=f"Jury could not decide ({undecided.detail}); the category fails open.",
        shifts=[],
        rounds=[],
        stop_reason="no_quorum",
        baselines=Baselines(
            round1_majority=None, final_majority=None, weighted_vote=None, judge=None
        ),
        judge=JudgeOut(
            name=judge.name if judge else NO_JUDGE,
            model=judge.model if judge else NO_JUDGE,
            family=judge.family if judge else NO_JUDGE,
            verdict=None,
            confidence=None,
            disagreement=None,
            fallback=True,
            fallback_reason="no quorum: the category fails open",
        ),
        degraded=True,
        failures=[],
        recused=[],
        usage=Usage(),
        latency_ms=0.0,
        weights_version=None,
        action=undecided.action,
        redacted=list(undecided.redacted),
        fail_mode="open",
    )


def _category_label(config: JuryConfig, category: str) -> str:
    return category if category in config.categories else "other"
