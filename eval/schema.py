"""The report data model: what ``report.json`` holds.

Every accuracy-like share is a :class:`~eval.metrics.Proportion` object
``{"successes", "n", "value", "low", "high"}``: ``value`` is the share and ``low``/``high``
its Wilson 95% interval (all three ``null`` when ``n`` is 0). Denominators always include
items that did not finish ok; those count as wrong.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from eval.metrics import (
    Matrix,
    PositionBias,
    Proportion,
    ReliabilityBin,
    ShiftCounts,
    Summary,
)
from eval.records import METHODS, Method

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class JurorAccuracy(_Model):
    """A juror's accuracy on its round-1 and its final-round position."""

    round1: Proportion
    final: Proportion


class Accuracy(_Model):
    """Accuracy of the verdict and of every baseline and juror, over all items."""

    judge: Proportion
    round1_majority: Proportion
    final_majority: Proportion
    weighted_vote: Proportion
    jurors: dict[str, JurorAccuracy]
    # The judge's own choice before label calibration; absent from reports made before it.
    judge_uncalibrated: Proportion | None = None

    def methods(self) -> tuple[Method, ...]:
        """The verdict methods measured: the uncalibrated judge only where a judge was."""
        if self.judge_uncalibrated is not None:
            return METHODS
        return tuple(method for method in METHODS if method != "judge_uncalibrated")

    def of(self, method: Method) -> Proportion:
        """The accuracy of one verdict method."""
        by_method = {
            "judge": self.judge,
            "judge_uncalibrated": self.judge_uncalibrated or self.judge,
            "round1_majority": self.round1_majority,
            "final_majority": self.final_majority,
            "weighted_vote": self.weighted_vote,
        }
        return by_method[method]


class Shifts(_Model):
    """Position changes across rounds, summed over jurors and per juror."""

    total: ShiftCounts
    jurors: dict[str, ShiftCounts]


class Failures(_Model):
    """Everything that failed: item statuses, item errors, failed juror rounds."""

    not_ok: int
    by_status: dict[str, int]
    errors: dict[str, int]  # first line of the item error -> count
    juror_failed_rounds: dict[str, int]
    juror_failure_reasons: dict[str, int]


class Section(_Model):
    """All metrics over one set of items (the whole run, or one category)."""

    n: int
    accuracy: Accuracy
    kappa: float | None  # judge vs gold
    kappa_by_method: dict[str, float | None]
    ece: float | None  # of judge_confidence, over items with a verdict and a confidence
    brier: float | None
    calibrated_n: int  # items that entered ece/brier
    reliability: list[ReliabilityBin]
    shifts: Shifts
    agreement: Matrix  # round-1 positions, over items both jurors answered
    error_correlation: Matrix  # phi of round-1 error indicators
    mean_error_correlation: float | None
    n_eff: float | None  # effective independent round-1 votes (Kish design effect)
    oracle_accuracy: Proportion  # some juror right in round 1
    oracle_gap: Proportion  # some juror right in round 1, judge wrong
    position_bias: PositionBias
    failures: Failures
    usage: dict[str, Summary]


class Report(Section):
    """The whole-run section plus run metadata and one section per category."""

    schema_version: int = SCHEMA_VERSION
    meta: dict[str, Any]
    by_category: dict[str, Section]
