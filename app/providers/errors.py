"""Typed model-call failures.

ProviderError                  base; ``kind`` is the failure reason recorded on the verdict
├── retriable
│   ├── ProviderTimeoutError   timeout: no answer before the call's deadline
│   ├── RateLimitedError       rate_limited: the provider asked us to slow down
│   ├── ProviderServerError    provider_error: 5xx, dropped connection, overload
│   └── InvalidOutputError     invalid_output: the answer does not fit the schema
└── not retriable
    ├── AuthError              auth: missing or rejected credentials
    ├── ProviderRequestError   provider_error: unknown model, bad request
    └── BudgetExceededError    budget: the call would exceed a spend cap
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class FailureKind(StrEnum):
    """Why a juror or judge call produced no usable answer."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PROVIDER_ERROR = "provider_error"
    INVALID_OUTPUT = "invalid_output"
    BUDGET = "budget"


class ProviderError(Exception):
    """A model call failed; ``kind`` says why, ``retriable`` whether trying again may help."""

    kind: ClassVar[FailureKind] = FailureKind.PROVIDER_ERROR
    retriable: ClassVar[bool] = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProviderTimeoutError(ProviderError):
    """No answer arrived before the call's deadline."""

    kind = FailureKind.TIMEOUT
    retriable = True


class RateLimitedError(ProviderError):
    """The provider rejected the call for rate or quota reasons."""

    kind = FailureKind.RATE_LIMITED
    retriable = True


class ProviderServerError(ProviderError):
    """The provider failed on its side (5xx, dropped connection)."""

    retriable = True


class InvalidOutputError(ProviderError):
    """The model answered, but not in the required schema."""

    kind = FailureKind.INVALID_OUTPUT
    retriable = True


class AuthError(ProviderError):
    """Credentials are missing or were rejected."""

    kind = FailureKind.AUTH


class ProviderRequestError(ProviderError):
    """The provider refused the request itself (unknown model, bad parameters)."""


class BudgetExceededError(ProviderError):
    """The call would exceed a spend cap."""

    kind = FailureKind.BUDGET
