"""Jury's error hierarchy, mapped onto stable JSON error bodies.

    JuryError                 base; carries an HTTP status and an error code
    ├── ConfigError           the configuration is invalid (start-up)
    ├── NotFoundError         404 — a verdict or resource does not exist
    ├── ConflictError         409 — the request conflicts with recorded state
    │   ├── RequestInProgressError  409 — the same Idempotency-Key is still being answered
    │   └── ClaimLostError    409 — another worker took over a queued verdict (worker-side)
    ├── BadRequestError       400 — the request cannot be read at all (a body that is not JSON)
    ├── UnauthorizedError     401 — no API key, or one Jury does not know (WWW-Authenticate)
    ├── ForbiddenError        403 — the key's role may not do this
    ├── PayloadTooLargeError  413 — a field or the body is over its size limit
    ├── InvalidRequestError   422 — a field is valid JSON but not acceptable
    │   ├── IdempotencyKeyReusedError  422 — an Idempotency-Key sent again with another body
    │   └── SecretInInputError  422 — the input holds a secret and the category refuses it
    ├── SpendCapError         429 — a key's daily spend cap is reached (Retry-After)
    ├── RateLimitedError      429 — a key's requests per minute are spent (Retry-After)
    ├── NoQuorumError         503 — too few valid jurors; carries the partial positions
    ├── UnavailableError      503 — a dependency (the database) is down or does not answer
    └── DatabaseError         500 — the database refused a statement for another reason
                                    (logged with its reference; ``app.core.db.database_error``)

Provider (model) failures are a separate, typed hierarchy in ``app.providers.errors``: they are
part of a verdict's record, not HTTP errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class JuryError(Exception):
    """Base of every error Jury raises on purpose; ``headers`` go out with the response."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Return the JSON body sent to the client."""
        return {"error": self.code, "detail": self.detail, **self.extra}


class ConfigError(JuryError):
    """The configuration file or settings are invalid."""

    code = "config_error"


class NotFoundError(JuryError):
    """A requested resource does not exist."""

    status_code = 404
    code = "not_found"


class ConflictError(JuryError):
    """The request conflicts with what is already recorded."""

    status_code = 409
    code = "conflict"


class ClaimLostError(ConflictError):
    """Another worker took over this asynchronous verdict: this worker's result is void."""

    code = "claim_lost"


class BadRequestError(JuryError):
    """The request cannot be read: its body is not the JSON it declares, or not text at all."""

    status_code = 400
    code = "bad_request"


class HostNotAllowedError(BadRequestError):
    """A keyless (local mode) request named a host this server does not answer to.

    Without keys every route is open to whoever reaches the port, so a page on another site
    that rebinds its DNS name to loopback could read them: the Host header is what it cannot
    choose. The name asked for is never repeated in the answer.
    """

    code = "host_not_allowed"


class UnauthorizedError(JuryError):
    """No API key was given, or the key is unknown or revoked."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class ForbiddenError(JuryError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class PayloadTooLargeError(JuryError):
    """A field or the whole body is larger than allowed."""

    status_code = 413
    code = "payload_too_large"


class InvalidRequestError(JuryError):
    """A request field holds a value Jury cannot act on."""

    status_code = 422
    code = "invalid_request"


class RequestInProgressError(ConflictError):
    """A request with this Idempotency-Key is still being answered; retry after it ends."""

    code = "request_in_progress"

    def __init__(self, detail: str, *, retry_after_s: int = 1, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)}, **extra)


class IdempotencyKeyReusedError(InvalidRequestError):
    """This Idempotency-Key was used with another request body."""

    code = "idempotency_key_reused"


class SecretInInputError(InvalidRequestError):
    """The input holds a secret (named by kind, never by value) and the category refuses it."""

    code = "secret_in_input"


class SpendCapError(JuryError):
    """A spend cap is reached; ``Retry-After`` says when it resets."""

    status_code = 429
    code = "spend_cap_exceeded"

    def __init__(self, detail: str, *, retry_after_s: int, **extra: Any) -> None:
        super().__init__(
            detail,
            headers={"Retry-After": str(retry_after_s)},
            retry_after_s=retry_after_s,
            **extra,
        )


class RateLimitedError(JuryError):
    """The API key's requests per minute are spent; ``Retry-After`` says when to retry."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int, **extra: Any) -> None:
        super().__init__(
            detail,
            headers={"Retry-After": str(retry_after_s)},
            retry_after_s=retry_after_s,
            **extra,
        )


class NoQuorumError(JuryError):
    """Too few jurors gave a valid position for a verdict."""

    status_code = 503
    code = "no_quorum"


class UnavailableError(JuryError):
    """A dependency Jury needs to answer is unavailable."""

    status_code = 503
    code = "unavailable"


class DatabaseError(JuryError):
    """The database answered but refused the work: a fault of Jury's, logged, never retried."""

    status_code = 500
    code = "database_error"
