"""What an agent gets when Jury cannot decide: a refusal (fail closed) or a labelled answer.

Each category declares its ``fail_mode``. ``closed`` (the default) answers 503 ``no_quorum``, as
Jury always has. ``open`` answers the category's ``fail_open_option`` (the request's first option
unless set), marked so that it can never pass for a deliberated approval: ``fail_mode: "open"``,
confidence 0, ``escalate`` with reason ``fail_open``, and counted apart in
``jury_fail_open_verdicts_total``. The record keeps the truth: the verdict's row stays
``no_quorum`` with its partial positions.
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
)


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


def fail_open(config: JuryConfig, undecided: Undecided) -> VerdictOut | None:
    """Return the category's fail-open answer, or None when the category fails closed."""
    policy = config.policy(undecided.category)
    if policy.fail_mode != "open":
        return None
    option = policy.fail_open_option or undecided.options[0]
    if option not in undecided.options:
        # A fail-open answer must be one of the options asked; else there is none to give.
        return None
    panel = config.panels.get(undecided.panel) or config.panels[config.default_panel]
    judge = config.judge_for(panel)
    metrics.FAIL_OPEN.labels(_category_label(config, undecided.category), undecided.panel).inc()
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
