"""``Idempotency-Key`` on ``POST /verdict``: one deliberation per key, its answer replayed.

A key is scoped to the API key that sends it. The first request with a key claims it (atomically:
``SET NX`` semantics in a Lua script on Redis, a dict in-process) with the fingerprint of its
body; then

- the same key and body while the first is still running: 409 ``request_in_progress``
  (with ``Retry-After``), so 100 concurrent identical requests run one deliberation;
- the same key and body afterwards: the stored answer, replayed (same verdict id, same status);
- the same key with another body: 422 ``idempotency_key_reused``.

Answers worth replaying are stored (a verdict, an accepted asynchronous verdict, a recorded
``no_quorum``); after any other error the key is released, so that a retry runs afresh.

Two layers hold the keys. The fast one is Redis (this process's memory while Redis fails, or
without Redis): it answers concurrent duplicates and replays without touching the database.
The durable one is the database (``idempotency_keys``, one row per key per owner, its primary
key the unique constraint): a key claimed in the fast layer is claimed there too, and answers
are stored there first. So a key answered while Redis was down is replayed once Redis is back
(Redis does not know it; the database does), and two replicas that both fall back to their
memory while Redis is frozen still claim a key once: the second gets 409, then the answer.
A claim left ``running`` by a process that died lapses after its verdict's deadline plus
``CLAIM_MARGIN_S``; the next request with the key then deliberates afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import utcnow
from app.core.db import SessionMaker, session_scope
from app.core.errors import (
    DatabaseError,
    IdempotencyKeyReusedError,
    RequestInProgressError,
    UnavailableError,
)
from app.core.redis import RedisLink
from app.verdicts.record.tables import IdempotencyRecord

logger = logging.getLogger("jury.idempotency")

MAX_KEY_CHARS = 255

# Claim the key unless it is held: return nil when claimed, else the record that holds it.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
# Replace (ARGV[2] = a record) or delete (ARGV[2] = '') the key, only while our claim holds it.
_SETTLE = """
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current)['token'] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer as stored and replayed: status, JSON body, extra headers."""

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Record(BaseModel):
    """What a key holds: its claim, then the answer to replay."""

    token: str
    fingerprint: str
    state: Literal["running", "done"]
    status_code: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None

    def reply(self) -> Reply:
        """Return the stored answer, marked as a replay."""
        assert self.status_code is not None
        assert self.body is not None
        headers = {**(self.headers or {}), "Idempotent-Replayed": "true"}
        return Reply(self.status_code, self.body, headers)


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to answer a key's first request, and where to store the answer.

    ``key`` names it in the fast layer; ``scope`` and ``digest`` are its row in the database.
    """

    key: str
    scope: str
    digest: str
    token: str
    fingerprint: str


def fingerprint(body: BaseModel) -> str:
    """Return the SHA-256 of the request as parsed: formatting and key order do not count."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class MemoryKeys:
    """Keys held in this process; atomic because nothing awaits between read and write."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, tuple[float, str]] = {}  # key -> (expires at, record JSON)

    async def claim(self, key: str, record: str, ttl_s: float) -> str | None:
        """Hold ``key`` with ``record`` unless it is held; return the holder's record, if any."""
        now = self._clock()
        held = self._records.get(key)
        if held is not None and held[0] > now:
            return held[1]
        if len(self._records) > 100_000:
            self._records = {k: v for k, v in self._records.items() if v[0] > now}
        self._records[key] = (now + ttl_s, record)
        return None

    async def settle(self, key: str, token: str, record: str | None, ttl_s: float) -> None:
        """Replace (or, ``record`` None, drop) the key while ``token`` still holds it."""
        held = self._records.get(key)
        if held is None or Record.model_validate_json(held[1]).token != token:
            return
        if record is None:
            del self._records[key]
        else:
            self._records[key] = (self._clock() + ttl_s, record)


# A claim that another request released between our insert and our read is claimed again.
_CLAIM_TRIES = 3


class DatabaseKeys:
    """Keys held in the database: the durable claim every replica sees, whatever Redis does.

    Each operation is one short transaction; the claim is an ``INSERT … ON CONFLICT DO
    NOTHING`` on the key's primary key, so concurrent claims of one key on any number of
    replicas give it to exactly one.
    """

    def __init__(self, sessionmaker: SessionMaker, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def claim(self, claim: Claim, record: str, ttl_s: float) -> str | None:
        """Hold the claim's key with ``record`` unless it is held; return the holder's record."""
        for _ in range(_CLAIM_TRIES):
            async with session_scope(self._sessionmaker) as session:
                if await self._insert(session, claim, record, ttl_s):
                    return None
                if await self._take_lapsed(session, claim, record, ttl_s):
                    return None
                held = await session.exec(
                    select(IdempotencyRecord.record).where(*_row(claim.scope, claim.digest))
                )
                current = held.first()
            if current is not None:
                return current
        raise UnavailableError("database unavailable: the Idempotency-Key could not be claimed")

    async def settle(self, claim: Claim, record: str | None, ttl_s: float) -> None:
        """Replace (or, ``record`` None, drop) the key's row while ``claim`` still holds it."""
        ours = (*_row(claim.scope, claim.digest), col(IdempotencyRecord.token) == claim.token)
        async with session_scope(self._sessionmaker) as session:
            if record is None:
                await session.exec(delete(IdempotencyRecord).where(*ours))
                return
            expires_at = self._clock() + timedelta(seconds=ttl_s)
            await session.exec(
                update(IdempotencyRecord)
                .where(*ours)
                .values(record=record, expires_at=expires_at)
                .execution_options(synchronize_session=False)
            )

    async def _insert(self, session: AsyncSession, claim: Claim, record: str, ttl_s: float) -> bool:
        connection = await session.connection()
        insert = sqlite_insert if connection.dialect.name == "sqlite" else postgres_insert
        statement = (
            insert(IdempotencyRecord)
            .values(
                scope=claim.scope,
                key_digest=claim.digest,
                token=claim.token,
                record=record,
                expires_at=self._clock() + timedelta(seconds=ttl_s),
            )
            .on_conflict_do_nothing()
        )
        return (await session.exec(statement)).rowcount == 1

    async def _take_lapsed(
        self, session: AsyncSession, claim: Claim, record: str, ttl_s: float
    ) -> bool:
        # Conditional: of several requests finding the row lapsed, one takes it.
        now = self._clock()
        statement = (
            update(IdempotencyRecord)
            .where(*_row(claim.scope, claim.digest), col(IdempotencyRecord.expires_at) <= now)
            .values(token=claim.token, record=record, expires_at=now + timedelta(seconds=ttl_s))
            .execution_options(synchronize_session=False)
        )
        return (await session.exec(statement)).rowcount == 1


async def forget_expired(sessionmaker: SessionMaker, now: datetime) -> int:
    """Delete the keys whose claim or answer has lapsed; return how many (the sweeper's)."""
    async with session_scope(sessionmaker) as session:
        statement = delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now)
        return int((await session.exec(statement)).rowcount)


def _is_done(record: str) -> bool:
    return Record.model_validate_json(record).state == "done"


def _row(scope: str, digest: str) -> tuple[Any, ...]:
    return (col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.key_digest) == digest)


class IdempotencyKeys:
    """Claim keys, store answers and replay them: Redis (or this process) and the database.

    ``sessionmaker`` None: no durable layer (a test's, or a tool's without a database).
    """

    def __init__(
        self,
        link: RedisLink | None,
        *,
        ttl_s: float,
        prefix: str = "jury",
        sessionmaker: SessionMaker | None = None,
    ) -> None:
        self._link = link
        self._memory = MemoryKeys()
        self._durable = DatabaseKeys(sessionmaker) if sessionmaker is not None else None
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def claim(
        self, scope: str, key: str, body: BaseModel, *, running_ttl_s: float
    ) -> Claim | Reply:
        """Claim ``key`` for ``body``, or return the answer to replay.

        Raises ``RequestInProgressError`` while the key's first request runs and
        ``IdempotencyKeyReusedError`` when the key came with another body.
        """
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        claim = Claim(
            key=f"{self._prefix}:idempotency:{scope}:{digest}",
            scope=scope,
            digest=digest,
            token=secrets.token_hex(8),
            fingerprint=fingerprint(body),
        )
        record = Record(token=claim.token, fingerprint=claim.fingerprint, state="running")
        held = await self._claim(claim, record.model_dump_json(), running_ttl_s)
        if held is None:
            return claim
        holder = Record.model_validate_json(held)
        if holder.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was already used with another request body; use a new key",
                field="Idempotency-Key",
            )
        if holder.state == "running":
            raise RequestInProgressError(
                "a request with this Idempotency-Key is still being answered; retry to get "
                "its answer once it ends"
            )
        return holder.reply()

    async def store(self, claim: Claim, reply: Reply) -> None:
        """Keep ``reply`` as the key's answer for ``ttl_s``."""
        record = Record(
            token=claim.token,
            fingerprint=claim.fingerprint,
            state="done",
            status_code=reply.status_code,
            body=reply.body,
            headers=reply.headers,
        )
        await self._settle(claim, record.model_dump_json())

    async def release(self, claim: Claim) -> None:
        """Forget the claim: the next request with the key runs afresh."""
        await self._settle(claim, None)

    async def _claim(self, claim: Claim, record: str, ttl_s: float) -> str | None:
        fast = await self._fast_claim(claim.key, record, ttl_s)
        if self._durable is None or (fast is not None and _is_done(fast)):
            return fast  # answers are final: a replay needs no database
        # We hold the key in the fast layer, or it says another request does: the database
        # decides. A running claim in Redis may be a ghost (a command a frozen Redis ran when
        # it thawed, after its client had given up) or a claim not yet in the database.
        try:
            held = await self._durable.claim(claim, record, ttl_s)
        except BaseException:
            if fast is None:
                with anyio.CancelScope(shield=True):
                    await self._fast_settle(claim, None)
            raise
        if held is not None and fast is None:
            # The database knew the key (answered while Redis was down, or claimed by another
            # replica meanwhile): an answer is copied to the fast layer, a running claim frees it.
            await self._fast_settle(claim, held if _is_done(held) else None)
        return held

    async def _settle(self, claim: Claim, record: str | None) -> None:
        # The database first: it is what a request on another replica, or after Redis lost
        # the key, will read.
        if self._durable is not None:
            try:
                await self._durable.settle(claim, record, self._ttl_s)
            except (UnavailableError, DatabaseError) as exc:
                # The row keeps its running claim, which lapses with the verdict's deadline.
                logger.warning("idempotency key not settled in the database: %s", exc.detail)
        await self._fast_settle(claim, record)

    async def _fast_claim(self, key: str, record: str, ttl_s: float) -> str | None:
        async def in_redis(client: Redis) -> str | None:
            held = await client.eval(_CLAIM, 1, key, record, str(int(ttl_s * 1000)))
            return held.decode("utf-8") if isinstance(held, bytes) else held

        if self._link is None:
            return await self._memory.claim(key, record, ttl_s)
        return await self._link.attempt(
            "idempotency", in_redis, lambda: self._memory.claim(key, record, ttl_s)
        )

    async def _fast_settle(self, claim: Claim, record: str | None) -> None:
        async def in_redis(client: Redis) -> None:
            ttl_ms = str(int(self._ttl_s * 1000))
            await client.eval(_SETTLE, 1, claim.key, claim.token, record or "", ttl_ms)
            # A claim taken in-process while Redis was down is settled there too.
            await self._memory.settle(claim.key, claim.token, record, self._ttl_s)

        if self._link is None:
            await self._memory.settle(claim.key, claim.token, record, self._ttl_s)
            return
        await self._link.attempt(
            "idempotency",
            in_redis,
            lambda: self._memory.settle(claim.key, claim.token, record, self._ttl_s),
        )
