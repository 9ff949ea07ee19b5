"""Weekly verdict accuracy under each weights version (the review home's chart)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.trust.repository import StoredVerdict
from app.trust.timeline import week_of, weekly_accuracy


def _row(day: str, version: int | None, verdict: str, correct: str | None) -> StoredVerdict:
    return StoredVerdict(
        verdict_id=f"{day}-{version}-{verdict}-{correct}",
        created_at=datetime.fromisoformat(day).replace(tzinfo=UTC),
        category="deploy",
        response={"verdict": verdict},
        weights_version=version,
        correct=correct,
    )


def test_weeks_start_on_monday() -> None:
    assert week_of(date(2026, 12, 1)) == date(2026, 11, 30)  # a Tuesday
    assert week_of(date(2026, 11, 30)) == date(2026, 11, 30)


def test_verdicts_are_scored_by_week_and_version() -> None:
    rows = [
        _row("2026-11-23", None, "yes", "yes"),
        _row("2026-11-24", None, "no", "yes"),
        _row("2026-11-30", None, "yes", "yes"),
        _row("2026-12-01", 1, "yes", "yes"),
        _row("2026-12-02", 1, "yes", "yes"),
        _row("2026-12-03", 1, "no", None),  # no outcome yet: not counted
    ]
    neutral, first = weekly_accuracy(rows)
    assert neutral.version is None
    assert [(w.start, w.accuracy.successes, w.accuracy.n) for w in neutral.weeks] == [
        (date(2026, 11, 23), 1, 2),
        (date(2026, 11, 30), 1, 1),
    ]
    assert first.version == 1
    [week] = first.weeks
    assert (week.start, week.accuracy.successes, week.accuracy.n) == (date(2026, 11, 30), 2, 2)
    assert week.accuracy.low is not None
    assert 0 < week.accuracy.low < 1.0
    assert week.accuracy.high == 1.0
