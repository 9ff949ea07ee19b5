"""HTTP endpoints of the verdict service: parse, call the service, return."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic_core import to_json

from app.core.clock import as_utc
from app.core.errors import (
    IdempotencyKeyReusedError,
    NoQuorumError,
    NotFoundError,
    RateLimitedError,
    RequestInProgressError,
    SecretInInputError,
    SpendCapError,
)
from app.deliberation.schemas import (
    VerdictAccepted,
    VerdictIncomplete,
    VerdictOut,
    VerdictPage,
    VerdictRequest,
    VerdictStatus,
)
from app.http.auth import AgentDep, ReaderDep
from app.http.deps import RuntimeDep, WindowDep
from app.http.errors import AUTHENTICATED, WITH_BODY, error_responses
from app.verdicts.idempotency import MAX_KEY_CHARS
from app.verdicts.intake import Intake, wants_async
from app.verdicts.progress import Entry, Progress
from app.verdicts.reads import VerdictReads
from app.verdicts.record.repository import VerdictFilter

router = APIRouter(tags=["verdicts"], responses=error_responses(*AUTHENTICATED))


async def get_verdict_reads(runtime: RuntimeDep) -> VerdictReads:
    """Return the process's verdict reads."""
    return runtime.verdict_reads


async def get_intake(runtime: RuntimeDep) -> Intake:
    """Return the process's verdict intake."""
    return runtime.intake


async def get_progress(runtime: RuntimeDep) -> Progress:
    """Return the process's progress streams."""
    return runtime.progress


VerdictReadsDep = Annotated[VerdictReads, Depends(get_verdict_reads)]
IntakeDep = Annotated[Intake, Depends(get_intake)]
ProgressDep = Annotated[Progress, Depends(get_progress)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Send the request again with the same key to get the same answer: one "
        "deliberation per key (per API key), its answer replayed for a day.",
    ),
]
Prefer = Annotated[
    str | None,
    Header(description="'respond-async': answer 202 at once, deliberate in a worker."),
]


class ReplyResponse(JSONResponse):
    """A reply's JSON, rendered by pydantic-core's encoder rather than ``json.dumps``.

    The same JSON (compact, non-ASCII as UTF-8) in a quarter of the time: ``json.dumps`` of a
    bench verdict's 3.6 kB body took 34 of the 46 microseconds of its rendering. A float that
    is not finite, which ``json.dumps`` refuses (a 500), is written as null.
    """

    def render(self, content: Any) -> bytes:
        """Return ``content`` as JSON bytes."""
        return to_json(content, inf_nan_mode="null")


# No response_model: the answer is the intake's reply as it was stored (an Idempotency-Key
# replay sends the first answer's very body), already dumped from a VerdictOut or
# VerdictAccepted; validating it again would be a second pass over the whole transcript.
@router.post(
    "/verdict",
    responses={
        200: {"model": VerdictOut, "description": "The recorded verdict."},
        202: {"model": VerdictAccepted, "description": "Queued (asynchronous verdict)."},
        **error_responses(
            *AUTHENTICATED,
            *WITH_BODY,
            RequestInProgressError,
            IdempotencyKeyReusedError,
            SecretInInputError,
            RateLimitedError,
            SpendCapError,
            NoQuorumError,
        ),
    },
    summary="Deliberate on a judgement and return a recorded verdict",
)
async def post_verdict(
    body: VerdictRequest,
    intake: IntakeDep,
    caller: AgentDep,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> JSONResponse:
    """Run the panel, the rebuttal rounds and the judge; the verdict is stored before return.

    With ``Prefer: respond-async`` (or ``"mode": "async"``) the verdict is queued instead: 202
    with its id and ``Location``; follow it at ``/verdicts/{id}/events``. 429 (``Retry-After``)
    past the key's requests per minute or its daily spend cap; 503 for no quorum or a database
    that is down.
    """
    reply = await intake.submit(
        body,
        caller=caller,
        idempotency_key=idempotency_key,
        respond_async=wants_async(prefer, body),
    )
    return ReplyResponse(reply.body, status_code=reply.status_code, headers=reply.headers)


@router.get(
    "/verdicts/{verdict_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
        **error_responses(*AUTHENTICATED, NotFoundError),
    },
)
async def verdict_events(
    verdict_id: str,
    progress: ProgressDep,
    caller: ReaderDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> StreamingResponse:
    """Stream a verdict's progress as server-sent events until its verdict (or failure).

    Events: ``juror_answered``, ``shift``, ``round_finished``, ``judge_answered``, then one of
    ``verdict``, ``no_quorum``, ``failed``. A finished verdict is replayed; ``Last-Event-ID``
    resumes after an event.
    """
    stream = await progress.follow(verdict_id, owner=caller.owner_scope, after=last_event_id)
    return StreamingResponse(
        server_sent(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def server_sent(stream: AsyncIterator[Entry | None]) -> AsyncIterator[str]:
    """Format progress entries as server-sent events; None as a keep-alive comment."""
    async for entry in stream:
        if entry is None:
            yield ": keep-alive\n\n"
            continue
        event_id, event = entry
        data = event.model_dump_json(exclude_none=True)
        yield f"id: {event_id}\nevent: {event.type}\ndata: {data}\n\n"


@router.get(
    "/verdicts/{verdict_id}",
    response_model=VerdictOut | VerdictIncomplete,
    responses=error_responses(*AUTHENTICATED, NotFoundError),
)
async def get_verdict(
    verdict_id: str, verdicts: VerdictReadsDep, caller: ReaderDep
) -> VerdictOut | VerdictIncomplete:
    """Return a verdict with its whole transcript (an agent: one it asked)."""
    return await verdicts.get(verdict_id, owner=caller.owner_scope)


@router.get(
    "/verdicts",
    response_model=VerdictPage,
    responses=error_responses(*AUTHENTICATED),
)
async def list_verdicts(
    verdicts: VerdictReadsDep,
    caller: ReaderDep,
    category: str | None = None,
    verdict: str | None = None,
    status: VerdictStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    window: WindowDep,
) -> VerdictPage:
    """List recorded verdicts, newest first, filtered by category, verdict, status or time.

    An agent sees only the verdicts it asked.
    """
    if since is not None and until is not None and as_utc(until) <= as_utc(since):
        # A swapped pair would list nothing, as if nothing had been recorded.
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "until"), "msg": "must be later than since"}]
        )
    filters = VerdictFilter(
        owner=caller.owner_scope,
        category=category,
        verdict=verdict,
        status=status,
        since=since,
        until=until,
    )
    return await verdicts.list(filters, window)
