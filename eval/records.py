"""Plain per-item records that the evaluation harness feeds to the metric layer.

Label frame: every label in an :class:`ItemResult` (``gold``, ``judge``, the baselines and the
juror positions) is one of ``options`` *as presented to the panel*. For a pairwise item judged
in order ``"ba"`` the presented first option is the original ``b``; metrics that need the
original frame (position bias) map labels back themselves.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["ok", "no_quorum", "error"]
Order = Literal["ab", "ba"]

# Statuses in a fixed order, so reports list them identically from run to run.
STATUSES: tuple[Status, ...] = ("ok", "no_quorum", "error")

# The verdict methods every item records: the judge and the three vote baselines.
Method = Literal[
    "judge", "judge_uncalibrated", "round1_majority", "final_majority", "weighted_vote"
]
METHODS: tuple[Method, ...] = (
    "judge",
    "judge_uncalibrated",
    "round1_majority",
    "final_majority",
    "weighted_vote",
)


class JurorTrace(BaseModel):
    """One juror's answers on one item, one entry per deliberation round."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    positions: list[str | None] = Field(default_factory=list)  # None: failed that round
    confidences: list[float | None] = Field(default_factory=list)
    failures: list[str | None] = Field(default_factory=list)  # failure reason per round

    @property
    def round1(self) -> str | None:
        """Position in the first round, None if the juror failed it or never ran."""
        return self.positions[0] if self.positions else None

    @property
    def final(self) -> str | None:
        """Position in the last round; a failure there is None (and so counts as wrong)."""
        return self.positions[-1] if self.positions else None


class ItemResult(BaseModel):
    """The outcome of one evaluated item: verdict, baselines, juror traces and usage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str
    category: str
    gold: str
    options: list[str]
    order: Order | None = None
    pair_id: str | None = None
    status: Status = "ok"
    error: str | None = None
    judge: str | None = None
    judge_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    raw_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    verdict_source: str | None = None
    # A calibrated judge's own choice before label calibration (None: the judge's verdict).
    judge_uncalibrated: str | None = None
    risk_covered: bool | None = None
    round1_majority: str | None = None
    final_majority: str | None = None
    weighted_vote: str | None = None
    jurors: dict[str, JurorTrace] = Field(default_factory=dict)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0.0)
    latency_ms: float = Field(default=0.0, ge=0.0)
    # Model calls made (repair re-asks included): all of them, and the jurors' alone.
    calls: int = Field(default=0, ge=0)
    juror_calls: int = Field(default=0, ge=0)
    # Sequential verdicts: the jurors convened and why convening stopped (None: whole panel).
    convened: list[str] | None = None
    convening_stop: str | None = None

    @model_validator(mode="after")
    def _gold_is_an_option(self) -> ItemResult:
        # A gold label outside the options would make every prediction silently wrong.
        if self.gold not in self.options:
            raise ValueError(f"gold {self.gold!r} is not one of options {self.options!r}")
        return self

    def verdict(self, method: Method) -> str | None:
        """The label a verdict method chose; None when the item did not finish ok."""
        if self.status != "ok":
            return None  # not-ok items count as wrong for every verdict method
        labels = {
            "judge": self.judge,
            "judge_uncalibrated": self.judge_uncalibrated or self.judge,
            "round1_majority": self.round1_majority,
            "final_majority": self.final_majority,
            "weighted_vote": self.weighted_vote,
        }
        return labels[method]

    def is_correct(self, method: Method) -> bool:
        """Whether a verdict method got this item right (not-ok items are wrong)."""
        return self.verdict(method) == self.gold
