"""Typed model-call failures.

ProviderError                    base; ``kind`` is the failure reason recorded on the verdict
├── ProviderTimeoutError         timeout: no answer before the call's deadline
├── ProviderRateLimitedError     rate_limited: the provider asked us to slow down
├── ProviderServerError          provider_error: 5xx, dropped connection, overload
├── InvalidOutputError           invalid_output: the answer does not fit the schema
├── AuthError                    auth: missing or rejected credentials
├── ProviderRequestError         provider_error: unknown model, bad request
└── BudgetExceededError          budget: the call would exceed a spend cap

What Jury does with them: ``InvalidOutputError`` is the one failure it retries, once, with the
validation error (a repair re-ask, ``app.deliberation.calls``); every other failure marks the
juror failed for its round, with its kind, and the round goes on without it. These are model
failures, part of a verdict's record: the HTTP errors are ``app.core.errors``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

# A provider's error text is kept to this many characters: enough for the upstream's message.
MAX_DETAIL_CHARS = 500
# What a provider keeps of an error's text before the hub scrubs it and cuts it to
# MAX_DETAIL_CHARS: cut first, a key straddling the cut would be too short to be recognised
# and its first characters would be kept.
RAW_DETAIL_CHARS = 4 * MAX_DETAIL_CHARS


class FailureKind(StrEnum):
    """Why a juror or judge call produced no usable answer."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PROVIDER_ERROR = "provider_error"
    INVALID_OUTPUT = "invalid_output"
    BUDGET = "budget"


class ProviderError(Exception):
    """A model call failed; ``kind`` says why."""

    kind: ClassVar[FailureKind] = FailureKind.PROVIDER_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProviderTimeoutError(ProviderError):
    """No answer arrived before the call's deadline."""

    kind = FailureKind.TIMEOUT


class ProviderRateLimitedError(ProviderError):
    """The provider rejected the call for rate or quota reasons."""

    kind = FailureKind.RATE_LIMITED


class ProviderServerError(ProviderError):
    """The provider failed on its side (5xx, dropped connection)."""


class InvalidOutputError(ProviderError):
    """The model answered, but not in the required schema."""

    kind = FailureKind.INVALID_OUTPUT


class AuthError(ProviderError):
    """Credentials are missing or were rejected."""

    kind = FailureKind.AUTH


class ProviderRequestError(ProviderError):
    """The provider refused the request itself (unknown model, bad parameters)."""


class BudgetExceededError(ProviderError):
    """The call would exceed a spend cap."""

    kind = FailureKind.BUDGET


def status_failure(status: int, detail: str) -> ProviderError:
    """Return the typed failure an upstream's HTTP error status means.

    408 timeout; 429 rate limited; 401, 403 auth; 400, 402, 404, 422 the request; any other
    status the provider's side. Both transports use it: the direct one for every error answer,
    the litellm one for an error litellm left generic (it raises ``APIError`` for a 403).
    """
    if status == 408:
        return ProviderTimeoutError(detail)
    if status == 429:
        return ProviderRateLimitedError(detail)
    if status in (401, 403):
        return AuthError(detail)
    if status in (400, 402, 404, 422):
        return ProviderRequestError(detail)
    return ProviderServerError(detail)
