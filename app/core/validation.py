"""What a validation error says to a caller: each field and its message, never the input.

The HTTP edge answers it as a 422 body and the command line prints it; both say the same
words for the same mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

VALIDATION_ERROR = "validation_error"

# Where FastAPI says a parameter came from: the field's name is what a caller needs.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """Return the 422 body for validation errors: each field and message, never the input."""
    fields = field_errors(errors)
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return {"error": VALIDATION_ERROR, "detail": detail, "fields": fields}


def field_body(field: str, message: str) -> dict[str, Any]:
    """Return the 422 body for one field found wrong outside pydantic (a NUL in a header)."""
    return {
        "error": VALIDATION_ERROR,
        "detail": f"{field}: {message}",
        "fields": [{"field": field, "message": message}],
    }


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Return pydantic's (or FastAPI's) errors as ``{"field", "message"}`` pairs."""
    return [_field_error(error) for error in errors]


def _field_error(error: Any) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        # FastAPI puts the character offset where the field would be: name the body instead.
        offset = next((p for p in error.get("loc", ()) if isinstance(p, int)), None)
        reason = (error.get("ctx") or {}).get("error", "")
        at = f" at character {offset}" if offset is not None else ""
        return {"field": "body", "message": f"is not valid JSON{at}: {reason}".rstrip(": ")}
    location = [str(part) for part in error.get("loc", ()) if part not in _LOCATIONS]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": ".".join(location) or "body", "message": message}
