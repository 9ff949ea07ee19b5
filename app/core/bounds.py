"""What a request may hold, defined once: integer ranges, JSON depth, no NaN, no NUL.

Every request schema and every path or query parameter takes its integers from here, so that
what the database can store is checked at the door and answered 422 naming the field; an
out-of-range value never reaches a driver (SQLite raises ``OverflowError`` past 2^63, asyncpg
past 2^31 for an INTEGER column) to come back as a 500 or a 503.

``RequestModel`` is the base of every request body: unknown fields are refused, and every
field's value is walked once for what no database column or JSON document of Jury's can keep
faithfully: NaN and infinities (JSON has no such numbers; they would be stored as null), NUL
characters (PostgreSQL text and jsonb cannot hold them) and containers nested deeper than
``MAX_JSON_DEPTH`` (they exhaust recursion in serialisers).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, field_validator

# Ids, versions and offsets are INTEGER columns (32-bit on PostgreSQL): nothing larger exists.
MAX_DB_INT = 2**31 - 1
# How deeply free JSON (a verdict's metadata) may nest; real caller data is a few levels.
MAX_JSON_DEPTH = 32

# What is wrong with a value, as a 422 says it (the place inside the field follows).
NUL_PROBLEM = "holds a NUL character (\\u0000), which cannot be stored"
NON_FINITE_PROBLEM = "holds NaN or an infinity, which JSON cannot represent"

RowId = Annotated[int, Ge(1), Le(MAX_DB_INT)]
"""The id of a stored row (a proposal, an outcome, an API key)."""

Count = Annotated[int, Ge(0), Le(MAX_DB_INT)]
"""A non-negative count or position: an offset, a weights version (0: the neutral weights)."""


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Return what makes ``value`` unstorable (depth, NaN/infinity, NUL), or None.

    Walks iteratively, so that a value nested thousands deep is measured, not a RecursionError.
    The problem names where it is (``a.b[2]``) but never repeats the value.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        problem = _scalar_problem(item)
        if problem is not None:
            return f"{problem}{_at(where)}"
        if isinstance(item, dict | list | tuple):
            if depth + 1 > max_depth:
                return f"nests deeper than {max_depth} levels{_at(where)}"
            stack.extend(_children(item, where, depth + 1))
    return None


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, float) and not math.isfinite(item):
        return NON_FINITE_PROBLEM
    if isinstance(item, str) and "\x00" in item:
        return NUL_PROBLEM
    return None


def _children(item: dict[Any, Any] | list[Any] | tuple[Any, ...], where: str, depth: int) -> Any:
    if isinstance(item, dict):
        for key, child in item.items():
            if isinstance(key, str) and "\x00" in key:
                yield key, where, depth  # the key itself is the problem
                continue
            yield child, f"{where}.{key}" if where else str(key), depth
        return
    for index, child in enumerate(item):
        yield child, f"{where}[{index}]", depth


def _at(where: str) -> str:
    # Keys are caller data of any length: the place is named, but only so much of it.
    shown = where if len(where) <= 200 else f"{where[:200]}…"
    return f" (at {shown})" if where else ""


class RequestModel(BaseModel):
    """Base of request bodies: no unknown fields, and no value a database cannot keep."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Nested request models were checked field by field when they were built.
        if isinstance(value, BaseModel):
            return value
        problem = json_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value
