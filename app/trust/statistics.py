"""Per-juror, per-category trust statistics computed from outcome records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.deliberation.vote import ALL_CATEGORIES
from app.trust.records import JurorRecord, OutcomeRecord
from app.trust.scoring import BetaAccuracy, Calibration, accuracy_of, calibration_of


class Decider(StrEnum):
    """A way of reaching a decision that is recorded on every verdict next to the jurors."""

    JUDGE = "judge"
    ROUND1_MAJORITY = "round1_majority"
    FINAL_MAJORITY = "final_majority"
    WEIGHTED_VOTE = "weighted_vote"


class ShiftRecord(BaseModel):
    """How a juror's position moved between round 1 and its final round."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wrong_to_right: int = 0
    right_to_wrong: int = 0
    # Changed from one wrong option to another wrong option.
    other: int = 0
    held: int = 0


class JurorCellStats(BaseModel):
    """Statistics of one juror (name and model id) in one category, or in "*"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    juror: str
    model: str
    category: str
    n: int = Field(ge=0, description="verdicts the juror sat on")
    round1: BetaAccuracy
    final: BetaAccuracy
    round1_failures: int = Field(ge=0)
    final_failures: int = Field(ge=0)
    shifts: ShiftRecord
    calibration: Calibration
    round1_calibration: Calibration


class DeciderCellStats(BaseModel):
    """Accuracy of the judge or of one baseline in one category, or in "*"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decider: Decider
    category: str
    n: int = Field(ge=0, description="verdicts where this decider produced an answer")
    missing: int = Field(ge=0, description="verdicts where it produced none")
    accuracy: BetaAccuracy
    # Only the judge states a confidence.
    calibration: Calibration | None = None


class TrustStats(BaseModel):
    """All trust statistics of a set of outcome records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_records: int
    categories: tuple[str, ...]
    jurors: tuple[JurorCellStats, ...]
    deciders: tuple[DeciderCellStats, ...]

    def juror_cell(self, juror: str, model: str, category: str) -> JurorCellStats | None:
        """Return the cell of a juror (name, model id) in a category, if it has one."""
        for cell in self.jurors:
            if (cell.juror, cell.model, cell.category) == (juror, model, category):
                return cell
        return None

    def decider_cell(self, decider: Decider, category: str) -> DeciderCellStats | None:
        """Return the cell of the judge or a baseline in a category, if it has one."""
        for cell in self.deciders:
            if (cell.decider, cell.category) == (decider, category):
                return cell
        return None


def decision_of(record: OutcomeRecord, decider: Decider) -> str | None:
    """Return the option a decider chose on a record, or None if it gave none."""
    if decider is Decider.JUDGE:
        return record.judge_verdict
    if decider is Decider.ROUND1_MAJORITY:
        return record.round1_majority
    if decider is Decider.FINAL_MAJORITY:
        return record.final_majority
    return record.weighted_vote


def _shift_record(entries: Sequence[tuple[JurorRecord, str]]) -> ShiftRecord:
    """Count position moves of jurors that answered in both round 1 and the final round."""
    counts = {"wrong_to_right": 0, "right_to_wrong": 0, "other": 0, "held": 0}
    for juror, correct in entries:
        first, last = juror.round1_position, juror.final_position
        if first is None or last is None:
            continue
        if first == last:
            counts["held"] += 1
        elif last == correct:
            counts["wrong_to_right"] += 1
        elif first == correct:
            counts["right_to_wrong"] += 1
        else:
            counts["other"] += 1
    return ShiftRecord(**counts)


def _pairs(positions: Iterable[tuple[str | None, float | None, str]]) -> list[tuple[float, bool]]:
    """Return (confidence, correct) pairs of answers that carry a confidence."""
    return [
        (conf, pos == correct)
        for pos, conf, correct in positions
        if pos is not None and conf is not None
    ]


def juror_cell_stats(
    entries: Sequence[tuple[JurorRecord, str]], *, juror: str, model: str, category: str
) -> JurorCellStats:
    """Compute one juror cell from (juror record, correct option) pairs."""
    first = [(j.round1_position, j.round1_confidence, c) for j, c in entries]
    last = [(j.final_position, j.final_confidence, c) for j, c in entries]
    return JurorCellStats(
        juror=juror,
        model=model,
        category=category,
        n=len(entries),
        # A failed round is not a judgement: it counts as a failure, not as a wrong answer.
        round1=accuracy_of([pos == c for pos, _, c in first if pos is not None]),
        final=accuracy_of([pos == c for pos, _, c in last if pos is not None]),
        round1_failures=sum(pos is None for pos, _, _ in first),
        final_failures=sum(pos is None for pos, _, _ in last),
        shifts=_shift_record(entries),
        calibration=calibration_of(_pairs(last)),
        round1_calibration=calibration_of(_pairs(first)),
    )


def decider_cell_stats(
    records: Sequence[OutcomeRecord], *, decider: Decider, category: str
) -> DeciderCellStats:
    """Compute the accuracy (and for the judge, calibration) of one decider over records."""
    answers = [(decision_of(r, decider), r.correct) for r in records]
    given = [(answer, correct) for answer, correct in answers if answer is not None]
    calibration = None
    if decider is Decider.JUDGE:
        calibration = calibration_of(
            _pairs((r.judge_verdict, r.judge_confidence, r.correct) for r in records)
        )
    return DeciderCellStats(
        decider=decider,
        category=category,
        n=len(given),
        missing=len(answers) - len(given),
        accuracy=accuracy_of([answer == correct for answer, correct in given]),
        calibration=calibration,
    )


def _by_category(records: Sequence[OutcomeRecord]) -> dict[str, list[OutcomeRecord]]:
    """Group records by category and add the all-categories group under "*"."""
    groups: dict[str, list[OutcomeRecord]] = defaultdict(list)
    for record in records:
        groups[record.category].append(record)
    groups[ALL_CATEGORIES] = list(records)
    return dict(groups)


def compute_stats(records: Sequence[OutcomeRecord]) -> TrustStats:
    """Compute trust statistics for every juror, the judge and each baseline, per category."""
    groups = _by_category(records)
    juror_entries: dict[tuple[str, str, str], list[tuple[JurorRecord, str]]] = defaultdict(list)
    for category, group in groups.items():
        for record in group:
            for juror in record.jurors:
                juror_entries[(juror.name, juror.model, category)].append((juror, record.correct))
    jurors = tuple(
        juror_cell_stats(entries, juror=name, model=model, category=category)
        for (name, model, category), entries in sorted(juror_entries.items())
    )
    deciders = tuple(
        decider_cell_stats(group, decider=decider, category=category)
        for category, group in sorted(groups.items())
        for decider in Decider
    )
    categories = tuple(sorted(c for c in groups if c != ALL_CATEGORIES))
    return TrustStats(
        n_records=len(records), categories=categories, jurors=jurors, deciders=deciders
    )
