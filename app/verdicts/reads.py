"""The reads of the verdict record: one verdict whole, a page of them, the queue's length.

The API, the CLI and the progress stream read verdicts back through ``VerdictReads``.
"""

from __future__ import annotations

from app.core.config import JuryConfig
from app.core.db import SessionMaker, session_scope
from app.core.errors import NotFoundError
from app.core.pages import Window
from app.deliberation.schemas import VerdictIncomplete, VerdictOut, VerdictPage, VerdictSummary
from app.verdicts.failmode import recorded_fail_open
from app.verdicts.record.repository import VerdictFilter, VerdictRepository


class VerdictReads:
    """Read recorded verdicts back, each read in a session of its own."""

    def __init__(self, sessionmaker: SessionMaker, config: JuryConfig) -> None:
        self._sessionmaker = sessionmaker
        self._config = config

    async def get(
        self, verdict_id: str, *, owner: int | None = None
    ) -> VerdictOut | VerdictIncomplete:
        """Return a recorded verdict with its whole transcript.

        ``owner``: only a verdict asked with that API key is found (others are 404, so that
        an agent cannot learn which ids exist).
        """
        async with session_scope(self._sessionmaker) as session:
            repository = VerdictRepository(session)
            row = await repository.get(verdict_id)
            if row is None or (owner is not None and row.api_key_id != owner):
                raise _not_found(verdict_id)
            if row.status == "completed" and row.response is not None:
                return VerdictOut.model_validate(row.response)
            calls = await repository.calls(verdict_id)
        opened = recorded_fail_open(self._config, row)
        return VerdictIncomplete.from_row(row, calls, fail_open=opened)

    async def ensure_visible(self, verdict_id: str, *, owner: int | None) -> None:
        """Raise ``NotFoundError`` unless the verdict exists and ``owner`` (if any) asked it."""
        if owner is None:
            return
        async with session_scope(self._sessionmaker) as session:
            row = await VerdictRepository(session).get(verdict_id)
        if row is None or row.api_key_id != owner:
            raise _not_found(verdict_id)

    async def list(
        self, filters: VerdictFilter | None = None, window: Window | None = None
    ) -> VerdictPage:
        """Return one page of recorded verdicts that match ``filters``, newest first."""
        filters, window = filters or VerdictFilter(), window or Window()
        async with session_scope(self._sessionmaker) as session:
            rows, total = await VerdictRepository(session).page(filters, window)
        items = [VerdictSummary.model_validate(row, from_attributes=True) for row in rows]
        return VerdictPage.of(items, total=total, window=window)

    async def count_queued(self) -> int:
        """Return how many asynchronous verdicts wait for a worker."""
        async with session_scope(self._sessionmaker) as session:
            return await VerdictRepository(session).count_queued()


def _not_found(verdict_id: str) -> NotFoundError:
    return NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
