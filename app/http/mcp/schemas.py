"""Arguments and results of Jury's MCP tools: the input and output schemas agents see."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.bounds import RequestModel
from app.core.config import FailMode, JuryConfig, ModelSpec, SecretsPolicy
from app.deliberation.schemas import VerdictOut, VerdictRequest
from app.trust.schemas import OutcomeCreate
from app.verdicts.idempotency import MAX_KEY_CHARS

WAIT_DESCRIPTION = (
    "How long to wait for the verdict before answering status 'pending' with its id (the "
    "deliberation goes on; get_verdict fetches it). Default: the server's JURY_MCP_WAIT_S."
)


class RequestVerdictArgs(VerdictRequest):
    """The fields of POST /verdict, plus how long to wait and a key that makes retries safe."""

    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Send the call again with the same key to get the same verdict: one "
        "deliberation per key.",
    )
    wait_s: float | None = Field(default=None, ge=0, le=3600, description=WAIT_DESCRIPTION)


class GetVerdictArgs(RequestModel):
    """Which verdict to fetch, and how long to wait for it if it is still being decided."""

    id: str = Field(min_length=1, max_length=64, description="The verdict's id.")
    wait_s: float | None = Field(default=None, ge=0, le=3600, description=WAIT_DESCRIPTION)


class ReportOutcomeArgs(OutcomeCreate):
    """What turned out to be right for a verdict (as POST /verdicts/{id}/outcome)."""

    verdict_id: str = Field(min_length=1, max_length=64, description="The verdict's id.")


class NoArgs(BaseModel):
    """A tool that takes no arguments."""

    model_config = ConfigDict(extra="forbid")


class VerdictReply(BaseModel):
    """A verdict once decided; until then its id and status 'pending'."""

    id: str
    status: Literal["completed", "pending"]
    verdict: VerdictOut | None = Field(
        default=None, description="The whole verdict, once decided (status 'completed')."
    )
    detail: str | None = None

    @classmethod
    def pending(cls, verdict_id: str) -> VerdictReply:
        """Return the answer for a verdict still being deliberated."""
        return cls(
            id=verdict_id,
            status="pending",
            detail="still deliberating: call get_verdict with this id (nothing is lost or "
            "deliberated twice)",
        )


class JurorSeat(BaseModel):
    """A juror or judge as configured."""

    name: str
    model: str
    family: str


class PanelOut(BaseModel):
    """A named panel: its jurors and its judge."""

    name: str
    jurors: list[JurorSeat]
    judge: JurorSeat | None = Field(description="None: the panel has no judge (judge: none).")
    default: bool


class CategoryOut(BaseModel):
    """A configured category's policies."""

    name: str
    fail_mode: FailMode
    secrets: SecretsPolicy
    critical: bool
    escalate_below_confidence: float


class PanelsOut(BaseModel):
    """The panels a verdict can ask for, and the categories with their policies."""

    default_panel: str
    options: list[str]
    panels: list[PanelOut]
    categories: list[CategoryOut]

    @classmethod
    def of(cls, config: JuryConfig) -> PanelsOut:
        """Describe the panels and categories of ``config``."""
        panels = [
            PanelOut(
                name=name,
                jurors=[_seat(config, juror) for juror in panel.jurors],
                judge=_judge_seat(config.judge_for(panel)),
                default=name == config.default_panel,
            )
            for name, panel in config.panels.items()
        ]
        categories = [
            CategoryOut(
                name=name,
                fail_mode=policy.fail_mode,
                secrets=policy.secrets,
                critical=policy.critical,
                escalate_below_confidence=policy.escalate_below_confidence,
            )
            for name, policy in config.categories.items()
        ]
        return cls(
            default_panel=config.default_panel,
            options=list(config.protocol.default_options),
            panels=panels,
            categories=categories,
        )


def _seat(config: JuryConfig, name: str) -> JurorSeat:
    spec = config.juror(name)
    return JurorSeat(name=spec.name, model=spec.model, family=spec.family)


def _judge_seat(spec: ModelSpec | None) -> JurorSeat | None:
    return None if spec is None else JurorSeat(name=spec.name, model=spec.model, family=spec.family)
