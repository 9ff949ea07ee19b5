"""Accuracy of the recorded verdicts over time, by week, under each weights version in force.

A verdict counts in the week it was decided, under the version it records (neutral before the
first approval), once its outcome is known: the reviewer sees whether an approval helped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from app.trust.decision import Share
from app.trust.repository import StoredVerdict, TrustRepository


@dataclass(frozen=True, slots=True)
class Week:
    """One week's verdicts with outcomes under one version."""

    start: date  # the Monday
    accuracy: Share


@dataclass(frozen=True, slots=True)
class VersionWeeks:
    """Weekly accuracy of the verdicts decided under one weights version."""

    version: int | None  # None: the neutral weights
    weeks: list[Week]


def week_of(day: date) -> date:
    """Return the Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def weekly_accuracy(rows: Sequence[StoredVerdict]) -> list[VersionWeeks]:
    """Group verdicts with outcomes by version and week and score the verdict each gave."""
    tally: dict[int | None, dict[date, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for row in rows:
        if row.correct is None:
            continue
        counts = tally[row.weights_version][week_of(row.created_at.date())]
        counts[0] += row.response.get("verdict") == row.correct
        counts[1] += 1
    return [
        VersionWeeks(
            version=version,
            weeks=[Week(start, Share.of(hits, n)) for start, (hits, n) in sorted(weeks.items())],
        )
        for version, weeks in sorted(tally.items(), key=lambda item: item[0] or 0)
    ]


async def accuracy_over_time(repo: TrustRepository) -> list[VersionWeeks]:
    """Return the weekly accuracy of every verdict with an outcome, by version."""
    return weekly_accuracy(await repo.verdicts_with_outcomes())
