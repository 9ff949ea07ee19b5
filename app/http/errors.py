"""The error bodies of the API as its OpenAPI document describes them, from one place.

Every error answers ``ErrorBody`` (``JuryError.body``, the validation handler and the handler
of Starlette's own errors in ``app.http.middleware`` all send it). Routes list what they may
answer with ``error_responses``; the routers add the answers every authenticated route can
give (``AUTHENTICATED``) and every body-carrying route (``WITH_BODY``). Declaring 422 here
also keeps FastAPI from documenting its own validation body, which Jury never sends.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    HostNotAllowedError,
    JuryError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnavailableError,
)
from app.core.validation import VALIDATION_ERROR


class FieldError(BaseModel):
    """One invalid field: where it is (``metadata``, ``action.tool``, ``offset``) and why."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a message, and fields of the error where useful."""

    # Errors add their own fields (``retry_after_s``, ``id``, ``positions``, ``limit``…).
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A stable code: 'validation_error', 'not_found', …")
    detail: str = Field(description="What went wrong, for a person.")
    fields: list[FieldError] | None = Field(
        default=None, description="With 'validation_error': each invalid field and why."
    )


def error_responses(*errors: type[JuryError]) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` of a route that may answer with ``errors`` (and 422).

    Errors of one status share its entry; every entry's body is ``ErrorBody``.
    """
    described: defaultdict[int, list[str]] = defaultdict(list)
    described[422].append(f"'{VALIDATION_ERROR}': a field is invalid; 'fields' names each one.")
    for error in errors:
        described[error.status_code].append(f"'{error.code}': {_summary(error)}")
    return {
        status: {"model": ErrorBody, "description": " ".join(dict.fromkeys(lines))}
        for status, lines in sorted(described.items())
    }


def _summary(error: type[JuryError]) -> str:
    return (error.__doc__ or error.code).strip().splitlines()[0]


# What any route behind an API key may answer: no key, the wrong role, no database, and in
# local mode (no key) a Host it does not answer to.
AUTHENTICATED = (UnauthorizedError, ForbiddenError, UnavailableError, HostNotAllowedError)
# What a route that reads a JSON body (and writes what it says) may answer besides.
WITH_BODY = (BadRequestError, PayloadTooLargeError, ConflictError)
