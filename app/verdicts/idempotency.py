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
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from app.core.errors import IdempotencyKeyReusedError, RequestInProgressError
from app.core.redis import RedisLink

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
    """The right to answer a key's first request, and where to store the answer."""

    key: str
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


class IdempotencyKeys:
    """Claim keys, store answers and replay them; Redis when it answers, this process else."""

    def __init__(self, link: RedisLink | None, *, ttl_s: float, prefix: str = "jury") -> None:
        self._link = link
        self._memory = MemoryKeys()
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def claim(
        self, scope: str, key: str, body: BaseModel, *, running_ttl_s: float
    ) -> Claim | Reply:
        """Claim ``key`` for ``body``, or return the answer to replay.

        Raises ``RequestInProgressError`` while the key's first request runs and
        ``IdempotencyKeyReusedError`` when the key came with another body.
        """
        claim = Claim(
            key=self._storage_key(scope, key),
            token=secrets.token_hex(8),
            fingerprint=fingerprint(body),
        )
        record = Record(token=claim.token, fingerprint=claim.fingerprint, state="running")
        held = await self._claim(claim.key, record.model_dump_json(), running_ttl_s)
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

    def _storage_key(self, scope: str, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return f"{self._prefix}:idempotency:{scope}:{digest}"

    async def _claim(self, key: str, record: str, ttl_s: float) -> str | None:
        async def in_redis(client: Redis) -> str | None:
            held = await client.eval(_CLAIM, 1, key, record, str(int(ttl_s * 1000)))
            return held.decode("utf-8") if isinstance(held, bytes) else held

        if self._link is None:
            return await self._memory.claim(key, record, ttl_s)
        return await self._link.attempt(
            "idempotency", in_redis, lambda: self._memory.claim(key, record, ttl_s)
        )

    async def _settle(self, claim: Claim, record: str | None) -> None:
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
