"""Database tables of API keys and of each key's spend per UTC day."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Date, DateTime, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from app.core.clock import utcnow


class Role(StrEnum):
    """What a key may do; ``admin`` may do everything."""

    AGENT = "agent"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored, with a short prefix to recognise it by."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class KeySpend(SQLModel, table=True):
    """What one key has spent (and holds reserved) on one UTC day.

    Dollars are kept as integer micro-dollars so that concurrent increments add exactly.
    """

    __tablename__ = "key_spend"

    key_id: int = Field(
        sa_column=Column(Integer, ForeignKey("api_keys.id"), primary_key=True, nullable=False)
    )
    day: date = Field(sa_column=Column(Date, primary_key=True, nullable=False))
    tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    usd_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class AuthState(SQLModel, table=True):
    """What authentication must remember beyond the keys themselves: one row, once keys exist.

    ``keys_since`` is when the first key was created. From then on an empty key table (every
    key revoked, or rows removed) does not make Jury open again: local mode returns only when
    an admin says so (``JURY_REOPEN_LOCAL_MODE``).
    """

    __tablename__ = "auth_state"

    id: int = Field(default=1, primary_key=True)
    keys_since: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
