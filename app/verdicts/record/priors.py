"""Calibrated judges' content-free priors in the record: measured once, read by later processes.

A prior depends only on the judge (its model, server and probes), the options and the
prompts, all in its key; what it measured does not change between verdicts. Keeping it in the
record spares each ``jury ask`` process the content-free probe, which competes with the jurors
for the cores. A database that fails here costs a measurement, never a verdict: the failure is
logged and the prior measured (or, on save, kept in memory only).
"""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select

from app.core.clock import utcnow
from app.core.db import SessionMaker, session_scope
from app.core.errors import DatabaseError, UnavailableError
from app.deliberation.calibration import PriorKey, Probabilities
from app.verdicts.record.tables import JudgePrior

logger = logging.getLogger("jury.priors")


def key_digest(key: PriorKey) -> str:
    """Return the primary key of ``key``'s row: a digest of every part of it."""
    return hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()


class RecordedPriors:
    """The ``PriorStore`` of the verdict record (``judge_priors``)."""

    def __init__(self, sessionmaker: SessionMaker) -> None:
        self._sessionmaker = sessionmaker

    async def load(self, key: PriorKey) -> Probabilities | None:
        """Return the prior kept for ``key``, or None (none kept, or the database failed)."""
        try:
            async with session_scope(self._sessionmaker) as session:
                found = await session.exec(
                    select(JudgePrior.prior).where(JudgePrior.key_digest == key_digest(key))
                )
                prior = found.first()
        except (UnavailableError, DatabaseError) as exc:
            logger.warning("judge %s: kept prior not read, measuring it (%s)", key[0], exc)
            return None
        return dict(prior) if prior is not None else None

    async def save(self, key: PriorKey, prior: Probabilities) -> None:
        """Keep ``prior`` for ``key``; a prior a concurrent process kept first stays."""
        judge, fingerprint, options, prompt_version = key
        row = {
            "key_digest": key_digest(key),
            "judge": judge,
            "fingerprint": fingerprint,
            "options": list(options),
            "prompt_version": prompt_version,
            "prior": prior,
            "measured_at": utcnow(),
        }
        try:
            async with session_scope(self._sessionmaker) as session:
                connection = await session.connection()
                insert = sqlite_insert if connection.dialect.name == "sqlite" else postgres_insert
                await session.exec(insert(JudgePrior).values(**row).on_conflict_do_nothing())
        except (UnavailableError, DatabaseError) as exc:
            logger.warning("judge %s: measured prior not kept (%s)", judge, exc)
