"""``POST /verdict`` before and around the deliberation: rate limit, idempotency, sync or async.

The order is the contract: the API key's rate limit counts every request (replays included;
local mode, where the one caller is the operator, has none); then
an ``Idempotency-Key`` either replays a stored answer or claims the key; then the verdict is
decided now (200) or recorded and queued for a worker (202 with its ``Location``).
"""

from __future__ import annotations

import anyio

from app.core import metrics
from app.core.config import JuryConfig
from app.core.errors import NoQuorumError
from app.deliberation.schemas import VerdictIncomplete, VerdictOut, VerdictRequest
from app.security.principal import Principal
from app.security.ratelimit import RateLimiter
from app.verdicts.idempotency import Claim, IdempotencyKeys, Reply
from app.verdicts.jobs.queue import VerdictQueue
from app.verdicts.preparation import deadline_s
from app.verdicts.reads import VerdictReads
from app.verdicts.service import VerdictService

ROUTE = "/verdict"
# A key's claim outlives the longest a verdict may take, so that it never lapses mid-verdict.
CLAIM_MARGIN_S = 60.0


def wants_async(prefer: str | None, request: VerdictRequest) -> bool:
    """Return whether the caller asked for 202 now and the verdict later (RFC 7240 Prefer)."""
    if request.mode == "async":
        return True
    preferences = (part.split(";", 1)[0].strip().lower() for part in (prefer or "").split(","))
    return "respond-async" in preferences


def subject(caller: Principal) -> str:
    """Return whose rate limit and idempotency keys a request counts against."""
    return f"key-{caller.key_id}" if caller.key_id is not None else "local"


class Intake:
    """Take a verdict request: limit it, deduplicate it, decide or queue it."""

    def __init__(
        self,
        *,
        config: JuryConfig,
        verdicts: VerdictService,
        queue: VerdictQueue,
        limiter: RateLimiter,
        keys: IdempotencyKeys,
        reads: VerdictReads,
    ) -> None:
        self._config = config
        self._verdicts = verdicts
        self._reads = reads
        self._queue = queue
        self._limiter = limiter
        self._keys = keys

    async def submit(
        self,
        request: VerdictRequest,
        *,
        caller: Principal,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> Reply:
        """Answer one ``POST /verdict``; local mode (no key, loopback only) has no rate limit."""
        if caller.key_id is not None:
            await self._limiter.check(subject(caller), route=ROUTE)
        if idempotency_key is None:
            return await self._answer(request, caller, respond_async=respond_async)
        claim = await self._keys.claim(
            subject(caller), idempotency_key, request, running_ttl_s=self._claim_ttl(request)
        )
        if isinstance(claim, Reply):
            metrics.IDEMPOTENT_REPLAYS.inc()
            return claim
        return await self._answer_once(request, caller, claim, respond_async=respond_async)

    async def _answer_once(
        self, request: VerdictRequest, caller: Principal, claim: Claim, *, respond_async: bool
    ) -> Reply:
        """Answer under a claimed key: keep an answer worth replaying, else free the key."""
        try:
            reply = await self._answer(request, caller, respond_async=respond_async)
        except NoQuorumError as exc:
            # Recorded with an id: asking again must not deliberate again.
            with anyio.CancelScope(shield=True):
                await self._keys.store(claim, Reply(exc.status_code, exc.body()))
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._keys.release(claim)
            raise
        with anyio.CancelScope(shield=True):
            await self._keys.store(claim, reply)
        return reply

    async def _answer(
        self, request: VerdictRequest, caller: Principal, *, respond_async: bool
    ) -> Reply:
        if respond_async:
            accepted = await self._verdicts.submit(request, api_key_id=caller.key_id)
            await self._queue.enqueue(accepted.id)
            headers = {"Location": accepted.location, "Preference-Applied": "respond-async"}
            return Reply(202, accepted.model_dump(mode="json"), headers)
        try:
            verdict = await self._verdicts.decide(request, api_key_id=caller.key_id)
        except NoQuorumError as exc:
            opened = await self._fail_open(exc)
            if opened is None:
                raise
            verdict = opened
        return Reply(200, verdict.model_dump(mode="json", by_alias=True))

    async def _fail_open(self, error: NoQuorumError) -> VerdictOut | None:
        """Return the category's labelled fail-open answer, or None if it fails closed.

        Read back from the record, so that the answer is the one a later read (or an
        asynchronous caller) gets, field for field.
        """
        record = await self._reads.get(str(error.extra.get("id", "")))
        return record.fail_open if isinstance(record, VerdictIncomplete) else None

    def _claim_ttl(self, request: VerdictRequest) -> float:
        return deadline_s(request, self._config) + CLAIM_MARGIN_S
