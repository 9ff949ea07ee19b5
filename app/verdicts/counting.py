"""The verdict metrics: what a decided verdict or a missed quorum adds to ``/metrics``."""

from __future__ import annotations

from app.core import metrics
from app.core.config import JuryConfig
from app.deliberation.schemas import VerdictOut


def category_label(config: JuryConfig, category: str) -> str:
    """Return a bounded label: configured categories by name, the rest as 'other'."""
    return category if category in config.categories else "other"


def count_verdict(verdict: VerdictOut, category: str) -> None:
    """Count a completed verdict: its latency, rounds and any judge fallback."""
    metrics.VERDICTS.labels("completed", category, verdict.panel).inc()
    metrics.VERDICT_LATENCY.labels(verdict.panel).observe(verdict.latency_ms / 1000)
    metrics.ROUNDS.labels(verdict.panel).observe(len(verdict.rounds))
    if verdict.judge.fallback:
        metrics.JUDGE_FALLBACKS.labels(verdict.panel).inc()


def count_no_quorum(panel: str, category: str) -> None:
    """Count a verdict that too few jurors answered."""
    metrics.QUORUM_FAILURES.labels(panel).inc()
    metrics.VERDICTS.labels("no_quorum", category, panel).inc()
