"""The verdict metrics: what a decided verdict or a missed quorum adds to ``/metrics``."""

from __future__ import annotations

import functools
from typing import Any

from app.core import metrics
from app.core.config import JuryConfig
from app.deliberation.schemas import VerdictOut


def category_label(config: JuryConfig, category: str) -> str:
    """Return a bounded label: configured categories by name, the rest as 'other'."""
    return category if category in config.categories else "other"


def count_verdict(verdict: VerdictOut, category: str) -> None:
    """Count a completed verdict: its latency, rounds and any judge fallback."""
    completed, latency, rounds = _verdict_series(category, verdict.panel)
    completed.inc()
    latency.observe(verdict.latency_ms / 1000)
    rounds.observe(len(verdict.rounds))
    if verdict.judge.fallback:
        metrics.JUDGE_FALLBACKS.labels(verdict.panel).inc()


@functools.cache
def _verdict_series(category: str, panel: str) -> tuple[Any, Any, Any]:
    """Return a completed verdict's metric series; looked up once (``labels`` costs ~15 us).

    Bounded: configured categories (the rest are 'other') x configured panels.
    """
    return (
        metrics.VERDICTS.labels("completed", category, panel),
        metrics.VERDICT_LATENCY.labels(panel),
        metrics.ROUNDS.labels(panel),
    )


def count_no_quorum(panel: str, category: str) -> None:
    """Count a verdict that too few jurors answered."""
    metrics.QUORUM_FAILURES.labels(panel).inc()
    metrics.VERDICTS.labels("no_quorum", category, panel).inc()
