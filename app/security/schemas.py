"""Request and response shapes of API key management."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.core.bounds import RequestModel
from app.security.models import Role

# Names that already mean someone else in the audit log.
RESERVED_NAMES = frozenset({"local", "system", "api", "cli"})


def _utc(moment: datetime | None) -> datetime | None:
    """Mark a naive stored time as UTC: SQLite hands times back without their zone."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class KeyCreate(RequestModel):
    """A new key: who holds it (recorded as the actor of what it does) and its role."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.casefold() in RESERVED_NAMES:
            raise ValueError(f"'{value}' is reserved; choose another name")
        return value


class KeyOut(BaseModel):
    """A key as listed: never the key itself, only its prefix."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    prefix: str
    created_at: Annotated[datetime, AfterValidator(_utc)]
    revoked_at: Annotated[datetime | None, AfterValidator(_utc)] = None


class KeyCreated(KeyOut):
    """A key just created: the only time the key itself is shown."""

    key: str = Field(description="The API key. Store it now: Jury keeps only its hash.")
