"""Request and response shapes of the verdict API (product spec §3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.bounds import MAX_JSON_DEPTH, RequestModel
from app.core.clock import MAX_DEADLINE_S, MIN_DEADLINE_S
from app.core.options import validate_options
from app.core.pages import Page
from app.providers.errors import FailureKind

VerdictStatus = Literal["queued", "running", "completed", "no_quorum", "failed", "interrupted"]
EscalateReason = Literal[
    "low_confidence",
    "degraded_panel",
    "judge_fallback",
    "unanimous_on_critical",
    "split_panel",
    "below_risk_threshold",
    "fail_open",
]
# The action's arguments, rendered as JSON to every juror: bounded so that one request cannot
# fill a model's context, and shallow enough to read.
MAX_ACTION_CHARS = 50_000
MAX_ACTION_DEPTH = 8

VerdictSource = Literal["judge", "weighted_vote"]
"""What gave the verdict: the judge, or the approved aggregation rule over the jurors' votes."""


def _utc(moment: datetime) -> datetime:
    """Mark a naive stored time as UTC: SQLite hands times back without their zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _depth(value: Any) -> int:
    """Return how deeply JSON containers nest in ``value`` (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


class Action(RequestModel):
    """The tool call an agent is about to make: judged as untrusted material, never obeyed."""

    tool: str = Field(min_length=1, max_length=200, description="The tool the agent will call.")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="The arguments it will pass (a JSON object)."
    )

    @field_validator("tool")
    @classmethod
    def _tool_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("tool must not be blank")
        return value

    @field_validator("arguments")
    @classmethod
    def _arguments_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        depth = _depth(value)
        if depth > MAX_ACTION_DEPTH:
            raise ValueError(f"nests {depth} levels deep; the limit is {MAX_ACTION_DEPTH}")
        size = len(json.dumps(value, ensure_ascii=False, default=str))
        if size > MAX_ACTION_CHARS:
            raise ValueError(f"is {size} characters as JSON; the limit is {MAX_ACTION_CHARS}")
        return value

    def rendered(self) -> str:
        """Return the action as the jurors read it: stable, indented JSON."""
        return json.dumps(
            self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False
        )


class VerdictRequest(RequestModel):
    """What an agent asks Jury to judge."""

    question: str = Field(min_length=1, description="The judgement to make.")
    context: str | None = Field(default=None, description="Material the jurors must read.")
    action: Action | None = Field(
        default=None, description="The tool call about to be made, judged as untrusted material."
    )
    options: list[str] | None = Field(
        default=None, description="2 to 10 answer labels; the config's default (yes/no) if absent."
    )
    category: str = Field(default="default", min_length=1, max_length=64)
    panel: str | None = Field(default=None, description="A named panel; the default otherwise.")
    max_rounds: int | None = Field(default=None, ge=1, le=10)
    deadline_s: float | None = Field(
        default=None,
        ge=MIN_DEADLINE_S,
        le=MAX_DEADLINE_S,
        description=f"Overall time budget in seconds, {MIN_DEADLINE_S:g} to {MAX_DEADLINE_S}.",
    )
    exclude_models: list[str] = Field(default_factory=list, max_length=50)
    authored_by: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Free caller data, stored with the verdict (at most {MAX_JSON_DEPTH} levels).",
    )
    mode: Literal["sync", "async"] = Field(
        default="sync",
        description="'async': answer 202 with the verdict's id at once and deliberate in a "
        "worker (as the header 'Prefer: respond-async' does).",
    )

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be blank")
        return value

    @field_validator("options")
    @classmethod
    def _options_are_labels(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else validate_options(value)


class Failure(BaseModel):
    """Why a call gave no usable answer."""

    kind: FailureKind
    detail: str


class Tokens(BaseModel):
    """Token counts of one call or a whole verdict."""

    prompt: int = 0
    completion: int = 0

    @property
    def total(self) -> int:
        """Return prompt plus completion tokens."""
        return self.prompt + self.completion


class PositionOut(BaseModel):
    """One juror's answer (or failure) in one round."""

    juror: str
    model: str
    family: str
    position: str | None
    confidence: float | None
    reasoning: str | None
    evidence: str | None = None
    changed: bool = False
    latency_ms: float
    tokens: Tokens
    cost_usd: float = 0.0
    attempts: int = 1
    failure: Failure | None = None


class RoundOut(BaseModel):
    """Every position of one round."""

    number: int
    positions: list[PositionOut]


class Shift(BaseModel):
    """A juror changing its position between rounds."""

    juror: str
    round: int
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_position: str = Field(alias="from")
    to_position: str = Field(alias="to")
    reasoning: str | None = None


class Dissent(BaseModel):
    """A juror whose final position differs from the verdict."""

    juror: str
    model: str
    position: str
    confidence: float | None
    reasoning: str | None
    judge_note: str | None = None


class Baselines(BaseModel):
    """The plain aggregates recorded next to the judge's verdict."""

    round1_majority: str | None
    final_majority: str | None
    weighted_vote: str | None
    judge: str | None


class LabelCalibrationOut(BaseModel):
    """A calibrated judge's label calibration (``label_calibration`` in the config).

    ``observed`` is the judge's probability of each option at its verdict's first token,
    ``prior`` the same on a content-free copy of the case, ``calibrated`` the first divided by
    the second. ``skipped`` says why a verdict was not calibrated (a probe failed, say): the
    judge then chose as an uncalibrated judge does.
    """

    method: str = "content_free"
    uncalibrated_verdict: str | None = None
    flipped: bool = False
    observed: dict[str, float] = Field(default_factory=dict)
    prior: dict[str, float] = Field(default_factory=dict)
    calibrated: dict[str, float] = Field(default_factory=dict)
    skipped: str | None = None


class JudgeOut(BaseModel):
    """What the judge decided, or why the verdict fell back to the weighted vote."""

    name: str
    model: str
    family: str
    verdict: str | None
    confidence: float | None
    disagreement: str | None
    dissenter_notes: dict[str, str] = Field(default_factory=dict)
    fallback: bool = False
    fallback_reason: str | None = None
    latency_ms: float = 0.0
    tokens: Tokens = Field(default_factory=Tokens)
    failure: Failure | None = None
    calibration: LabelCalibrationOut | None = None


class RiskOut(BaseModel):
    """The category's guaranteed-risk threshold (Trust or Escalate) and where this verdict is.

    Verdicts whose calibrated confidence reaches ``threshold`` are ``covered``: among them the
    error rate is at most ``alpha`` with probability at least ``1 - delta``. Below it, the
    verdict escalates. ``guaranteed`` is false while too few outcomes support any threshold.
    """

    alpha: float
    delta: float
    threshold: float | None
    covered: bool
    guaranteed: bool
    n: int = Field(default=0, description="Outcomes the threshold was chosen on.")


class SequentialOut(BaseModel):
    """Who a sequential verdict convened and why it stopped calling more jurors.

    ``stop``: ``settled`` (the jurors not convened could not have changed the approved rule's
    winner), ``target`` (the posterior of ``leader`` reached ``target``), ``panel_exhausted``
    (everyone was convened) or ``deadline``. ``target_source``: the category's ``policy``
    target, or its approved guaranteed-risk threshold (``risk``).
    """

    order: list[str] = Field(description="The convening order: weighted jurors, cheapest first.")
    convened: list[str]
    not_convened: list[str]
    stop: Literal["settled", "target", "panel_exhausted", "deadline"]
    leader: str | None
    posterior: float = Field(description="The approved rule's posterior of the leader.")
    target: float
    target_source: Literal["policy", "risk"]


class FailureOut(BaseModel):
    """A failed call, listed at the top level of a degraded verdict."""

    juror: str
    model: str
    round: int
    kind: FailureKind
    detail: str


class Usage(BaseModel):
    """Tokens and cost of every call of a verdict."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0


class VerdictOut(BaseModel):
    """A deliberated verdict with its whole transcript."""

    id: str
    status: VerdictStatus
    created_at: UtcDatetime
    question: str
    options: list[str]
    category: str
    panel: str
    verdict: str
    confidence: float = Field(
        description="The confidence to act on: calibrated against outcomes when a calibration "
        "map is active (confidence_calibrated), else the raw one."
    )
    raw_confidence: float | None = Field(
        default=None, description="The uncalibrated confidence (judge's, or the vote share)."
    )
    confidence_calibrated: bool = False
    agreement: float
    unanimous: bool
    escalate: bool
    escalate_reasons: list[EscalateReason]
    dissent: list[Dissent]
    disagreement: str | None
    shifts: list[Shift]
    rounds: list[RoundOut]
    stop_reason: str
    budget_limited: bool = Field(
        default=False,
        description="Rebuttal rounds were skipped because the next one would have passed the "
        "per-verdict budget (stop_reason 'budget').",
    )
    baselines: Baselines
    judge: JudgeOut
    verdict_source: VerdictSource = Field(
        default="judge",
        description="Which gave the verdict: 'judge', or 'weighted_vote' (the approved "
        "aggregation rule; a panel without a judge, a category switched by evidence, or a "
        "judge fallback).",
    )
    risk: RiskOut | None = Field(
        default=None, description="The guaranteed-risk threshold of the category, if set."
    )
    sequential: SequentialOut | None = Field(
        default=None,
        description="A sequential verdict (the category's 'sequential: true'): who was "
        "convened and why convening stopped. None: the whole panel sat.",
    )
    degraded: bool
    failures: list[FailureOut]
    recused: list[str]
    usage: Usage
    latency_ms: float
    weights_version: int | None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Free caller data, stored with the verdict (at most {MAX_JSON_DEPTH} levels).",
    )
    action: Action | None = None
    redacted: list[str] = Field(
        default_factory=list,
        description="The kinds of secret replaced by [REDACTED:kind] before any model saw the "
        "input (never the values).",
    )
    fail_mode: Literal["open"] | None = Field(
        default=None,
        description="'open': Jury could not decide (no quorum) and the category fails open; "
        "this is the category's fail-open answer, not a deliberated verdict.",
    )

    @model_validator(mode="after")
    def _verdict_is_an_option(self) -> VerdictOut:
        if self.verdict not in self.options:
            raise ValueError("verdict must be one of the options")
        return self


class VerdictAccepted(BaseModel):
    """An asynchronous verdict, recorded and queued: where to read it and follow it."""

    id: str
    status: VerdictStatus
    created_at: UtcDatetime
    location: str = Field(description="GET it for the verdict once it is decided.")
    events: str = Field(description="GET it for the live progress (server-sent events).")

    @classmethod
    def for_id(cls, verdict_id: str, *, created_at: datetime) -> VerdictAccepted:
        """Return the answer for a verdict just queued."""
        return cls(
            id=verdict_id,
            status="queued",
            created_at=created_at,
            location=f"/verdicts/{verdict_id}",
            events=f"/verdicts/{verdict_id}/events",
        )


class VerdictSummary(BaseModel):
    """A verdict as listed by ``GET /verdicts``."""

    id: str
    status: VerdictStatus
    created_at: UtcDatetime
    question: str
    category: str
    panel: str
    verdict: str | None
    confidence: float | None
    escalate: bool | None
    degraded: bool | None
    latency_ms: float | None


class VerdictPage(Page[VerdictSummary]):
    """One page of verdicts, newest first."""


class CallOut(BaseModel):
    """One stored model call, as listed for a verdict that has no final answer."""

    model_config = ConfigDict(from_attributes=True)

    role: str
    round: int
    juror: str
    model: str
    family: str
    position: str | None
    confidence: float | None
    changed: bool
    attempts: int
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    failure_kind: str | None
    failure_detail: str | None


class VerdictIncomplete(BaseModel):
    """A recorded request that has no verdict: still running, refused or interrupted."""

    id: str
    status: VerdictStatus
    created_at: UtcDatetime
    question: str
    options: list[str]
    category: str
    panel: str
    error: dict[str, Any] | None
    calls: list[CallOut]
    fail_open: VerdictOut | None = Field(
        default=None,
        description="A no_quorum verdict in a category that fails open: the labelled answer "
        "(fail_mode open, confidence 0, escalated) an agent acts on, as the synchronous "
        "request answered it.",
    )

    @classmethod
    def from_row(
        cls, row: Any, calls: Any, *, fail_open: VerdictOut | None = None
    ) -> VerdictIncomplete:
        """Build from a verdict row and its stored calls."""
        return cls(
            fail_open=fail_open,
            id=row.id,
            status=row.status,
            created_at=row.created_at,
            question=row.question,
            options=row.options,
            category=row.category,
            panel=row.panel,
            error=row.error,
            calls=[CallOut.model_validate(call) for call in calls],
        )
