"""Database tables of the verdict record: one row per verdict, one per model call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# The table ``verdicts.api_key_id`` refers to must be in the metadata wherever verdicts are.
import app.security.models  # noqa: F401

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JsonType = JSON().with_variant(JSONB(), "postgresql")


class Verdict(SQLModel, table=True):
    """A verdict request and, once decided, its outcome and whole public response."""

    __tablename__ = "verdicts"
    __table_args__ = (Index("ix_verdicts_category_created", "category", "created_at"),)

    id: str = Field(primary_key=True, max_length=36)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    status: str = Field(max_length=16, index=True)
    question: str = Field(sa_column=Column(Text, nullable=False))
    context: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    options: list[str] = Field(sa_column=Column(JsonType, nullable=False))
    category: str = Field(max_length=64)
    panel: str = Field(max_length=64)
    request: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    caller_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JsonType, nullable=False)
    )
    verdict: str | None = Field(default=None, sa_column=Column(String(200), index=True))
    confidence: float | None = None
    agreement: float | None = None
    unanimous: bool | None = None
    escalate: bool | None = None
    degraded: bool | None = None
    judge_fallback: bool | None = None
    weights_version: int | None = None
    latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    # Sequential verdicts: how many jurors round 1 convened and why it stopped convening
    # (the response's ``sequential`` has the names); None where the whole panel sat.
    convened: int | None = None
    convening_stop: str | None = Field(default=None, max_length=16)
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    # Asynchronous verdicts: the worker whose claim holds the verdict, until when (renewed while
    # it runs; a crashed worker's claim lapses and another takes over), and how many claimed it.
    claimed_by: str | None = Field(default=None, max_length=36)
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # The API key that asked; agents read only their own verdicts. None: local mode or CLI.
    api_key_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("api_keys.id", name="fk_verdicts_api_key_id"),
            index=True,
            nullable=True,
        ),
    )


class ModelCall(SQLModel, table=True):
    """One juror or judge call, stored as soon as it completes (failures too)."""

    __tablename__ = "model_calls"

    id: int | None = Field(default=None, primary_key=True)
    verdict_id: str = Field(
        sa_column=Column(String(36), ForeignKey("verdicts.id"), index=True, nullable=False)
    )
    role: str = Field(max_length=8)
    round: int
    juror: str = Field(max_length=64)
    model: str = Field(max_length=200)
    family: str = Field(max_length=64)
    prompt_version: str = Field(max_length=32)
    messages: list[dict[str, Any]] = Field(sa_column=Column(JsonType, nullable=False))
    raw_output: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    parsed: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    position: str | None = Field(default=None, max_length=200)
    confidence: float | None = None
    changed: bool = False
    attempts: int = 1
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    failure_kind: str | None = Field(default=None, max_length=32)
    failure_detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """An ``Idempotency-Key``'s claim, then its answer: the durable copy of what Redis holds.

    One row per key per key owner (``scope``: an API key, or local mode). The primary key is
    the unique constraint that lets exactly one request, on any replica, claim a key, whether
    Redis answers or not; ``record`` is the claim's JSON (``app.verdicts.idempotency.Record``).
    """

    __tablename__ = "idempotency_keys"

    scope: str = Field(primary_key=True, max_length=32)
    key_digest: str = Field(primary_key=True, max_length=64)
    token: str = Field(max_length=32)
    record: str = Field(sa_column=Column(Text, nullable=False))
    # A running claim lapses after its verdict's deadline (its process died); an answer after
    # JURY_IDEMPOTENCY_TTL_S. A lapsed row is taken over by the next request with the key.
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class JudgePrior(SQLModel, table=True):
    """A calibrated judge's content-free prior over one options set, kept across processes.

    ``key_digest`` digests the whole key (judge, its spec's fingerprint, options, prompts'
    version); the other columns say what was measured, for a reader of the record.
    """

    __tablename__ = "judge_priors"

    key_digest: str = Field(primary_key=True, max_length=64)
    judge: str = Field(max_length=64)
    fingerprint: str = Field(max_length=64)
    options: list[str] = Field(sa_column=Column(JsonType, nullable=False))
    prompt_version: str = Field(max_length=32)
    prior: dict[str, float] = Field(sa_column=Column(JsonType, nullable=False))
    measured_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
