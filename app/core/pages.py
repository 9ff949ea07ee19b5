"""The one page shape of every listing: a ``Window`` in, a ``Page[T]`` out.

Every list (verdicts, proposals, the audit log) is newest first, cut by ``limit`` and
``offset``, and answers ``{items, total, limit, offset}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from pydantic import BaseModel

ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of a listing: at most ``limit`` items, after the first ``offset``."""

    limit: int = 50
    offset: int = 0


class Page(BaseModel, Generic[ItemT]):
    """One page of a listing, and how many items match in all."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[ItemT], *, total: int, window: Window) -> Self:
        """Return the page of ``items`` cut by ``window``, of ``total`` matching."""
        return cls(items=list(items), total=total, limit=window.limit, offset=window.offset)
