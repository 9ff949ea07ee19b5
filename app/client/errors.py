"""The client's exceptions: the server's error tree, by its codes, plus the gate's two refusals.

    JuryClientError               base of everything the client raises
    ├── TransportError            no answer: connect, read or write failed or timed out
    ├── ProtocolError             an answer that is not what the API documents
    ├── APIError                  the server answered an error body (``code``, ``detail``, ``body``)
    │   ├── BadRequest            400 bad_request (a body the server could not read)
    │   │   └── HostNotAllowed      400 host_not_allowed (keyless, under a foreign Host)
    │   ├── Unauthorized          401 unauthorized
    │   ├── Forbidden             403 forbidden
    │   ├── NotFound              404 not_found
    │   ├── Conflict              409 conflict
    │   │   ├── RequestInProgress   409 request_in_progress (``retry_after_s``)
    │   │   └── ClaimLost           409 claim_lost
    │   ├── PayloadTooLarge       413 payload_too_large
    │   ├── InvalidRequest        422 invalid_request
    │   │   ├── ValidationFailed    422 validation_error (``fields``)
    │   │   ├── IdempotencyKeyReused  422 idempotency_key_reused
    │   │   └── SecretInInput       422 secret_in_input (``kinds``, never values)
    │   ├── SpendCapExceeded      429 spend_cap_exceeded (``retry_after_s``)
    │   ├── RateLimited           429 rate_limited (``retry_after_s``)
    │   ├── DatabaseError         500 database_error (the server logged it)
    │   ├── NoQuorum              503 no_quorum (``verdict_id``, partial positions in ``body``)
    │   └── Unavailable           503 unavailable
    └── GateRefused               the gate did not let the action run (``verdict_id``, ``verdict``)
        ├── Escalated             the verdict must go to a human first (``reasons``)
        └── Rejected              the verdict is not the approving option

An unknown code maps onto its status's class, else onto ``APIError`` itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.deliberation.schemas import VerdictOut


class JuryClientError(Exception):
    """Base of every error the Jury client raises."""


class TransportError(JuryClientError):
    """The request got no answer: connecting, sending or reading failed or timed out."""


class ProtocolError(JuryClientError):
    """The server answered something the API does not document."""


class APIError(JuryClientError):
    """The server answered with an error body."""

    code: ClassVar[str] = "error"

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.body = body
        self.detail = str(body.get("detail", ""))
        super().__init__(f"{body.get('error', self.code)}: {self.detail}")

    @property
    def retry_after_s(self) -> float | None:
        """Return when to retry, if the server said."""
        value = self.body.get("retry_after_s")
        return float(value) if isinstance(value, int | float) else None


class BadRequest(APIError):
    """The server could not read the request (its body is not the JSON it declares)."""

    code = "bad_request"


class HostNotAllowed(BadRequest):
    """A keyless request named a host the server does not answer to (JURY_ALLOWED_HOSTS)."""

    code = "host_not_allowed"


class Unauthorized(APIError):
    """No API key, or one the server does not know."""

    code = "unauthorized"


class Forbidden(APIError):
    """The key's role may not do this."""

    code = "forbidden"


class NotFound(APIError):
    """No such verdict (or not one this key asked)."""

    code = "not_found"


class Conflict(APIError):
    """The request conflicts with what is recorded."""

    code = "conflict"


class RequestInProgress(Conflict):
    """The same Idempotency-Key is still being answered."""

    code = "request_in_progress"


class ClaimLost(Conflict):
    """Another worker took the verdict over."""

    code = "claim_lost"


class PayloadTooLarge(APIError):
    """A field or the body is over its limit."""

    code = "payload_too_large"


class InvalidRequest(APIError):
    """A field holds a value the server cannot act on."""

    code = "invalid_request"

    @property
    def fields(self) -> list[str]:
        """Return the names of the fields at fault."""
        listed = self.body.get("fields")
        if isinstance(listed, list):
            return [str(item.get("field")) for item in listed if isinstance(item, dict)]
        field = self.body.get("field")
        return [str(field)] if field is not None else []


class ValidationFailed(InvalidRequest):
    """The body does not match the request schema."""

    code = "validation_error"


class IdempotencyKeyReused(InvalidRequest):
    """The Idempotency-Key was used with another body."""

    code = "idempotency_key_reused"


class SecretInInput(InvalidRequest):
    """The input holds a secret and the category refuses such requests."""

    code = "secret_in_input"

    @property
    def kinds(self) -> list[str]:
        """Return the kinds of secret found (never their values)."""
        return [str(kind) for kind in self.body.get("kinds", [])]


class SpendCapExceeded(APIError):
    """The key's daily spend cap is reached."""

    code = "spend_cap_exceeded"


class RateLimited(APIError):
    """The key's requests per minute are spent."""

    code = "rate_limited"


class NoQuorum(APIError):
    """Too few jurors gave a valid position: no verdict (recorded with an id)."""

    code = "no_quorum"

    @property
    def verdict_id(self) -> str | None:
        """Return the id the refused verdict is recorded under."""
        value = self.body.get("id")
        return str(value) if value is not None else None


class DatabaseError(APIError):
    """The server's database refused the work for a reason other than being down (logged)."""

    code = "database_error"


class Unavailable(APIError):
    """A dependency of the server (its database) is down."""

    code = "unavailable"


class GateRefused(JuryClientError):
    """The gate did not let the action run; the verdict id is for the human hand-off."""

    def __init__(self, verdict: VerdictOut, message: str) -> None:
        self.verdict = verdict
        self.verdict_id = verdict.id
        super().__init__(f"{message} (verdict {verdict.id})")


class Escalated(GateRefused):
    """The verdict says a human must decide first."""

    def __init__(self, verdict: VerdictOut) -> None:
        self.reasons = list(verdict.escalate_reasons)
        super().__init__(verdict, f"escalated: {', '.join(self.reasons) or 'policy'}")


class Rejected(GateRefused):
    """The verdict is not the approving option."""

    def __init__(self, verdict: VerdictOut, *, proceed_on: str) -> None:
        self.proceed_on = proceed_on
        super().__init__(
            verdict, f"rejected: the verdict is '{verdict.verdict}', not '{proceed_on}'"
        )


_API_ERRORS: tuple[type[APIError], ...] = (
    BadRequest,
    HostNotAllowed,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RequestInProgress,
    ClaimLost,
    PayloadTooLarge,
    InvalidRequest,
    ValidationFailed,
    IdempotencyKeyReused,
    SecretInInput,
    SpendCapExceeded,
    RateLimited,
    DatabaseError,
    NoQuorum,
    Unavailable,
)
BY_CODE: dict[str, type[APIError]] = {error.code: error for error in _API_ERRORS}
BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    503: Unavailable,
}


def api_error(status_code: int, body: dict[str, Any]) -> APIError:
    """Return the typed error for an error answer."""
    error = BY_CODE.get(str(body.get("error"))) or BY_STATUS.get(status_code) or APIError
    return error(status_code, body)
