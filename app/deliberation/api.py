"""HTTP endpoints of the verdict service: parse, call the service, return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from app.core.errors import (
    ForbiddenError,
    NoQuorumError,
    NotFoundError,
    PayloadTooLargeError,
    SpendCapError,
    UnauthorizedError,
    UnavailableError,
)
from app.deliberation.schemas import VerdictIncomplete, VerdictOut, VerdictPage, VerdictRequest
from app.deliberation.service import VerdictService
from app.security.deps import AgentDep, ReaderDep

router = APIRouter(tags=["verdicts"])


def get_verdict_service(request: Request) -> VerdictService:
    """Return the process's verdict service, built in the lifespan."""
    service: VerdictService = request.app.state.verdict_service
    return service


VerdictServiceDep = Annotated[VerdictService, Depends(get_verdict_service)]


def _errors(*errors: type[Any]) -> dict[int | str, dict[str, Any]]:
    return {error.status_code: {"description": error.__doc__} for error in errors}


@router.post(
    "/verdict",
    response_model=VerdictOut,
    responses=_errors(
        UnauthorizedError,
        ForbiddenError,
        NoQuorumError,
        PayloadTooLargeError,
        SpendCapError,
        UnavailableError,
    ),
    summary="Deliberate on a judgement and return a recorded verdict",
)
async def post_verdict(
    body: VerdictRequest, service: VerdictServiceDep, caller: AgentDep
) -> VerdictOut:
    """Run the panel, the rebuttal rounds and the judge; the verdict is stored before return."""
    return await service.decide(body, api_key_id=caller.key_id)


@router.get(
    "/verdicts/{verdict_id}",
    response_model=VerdictOut | VerdictIncomplete,
    responses=_errors(UnauthorizedError, ForbiddenError, NotFoundError),
)
async def get_verdict(
    verdict_id: str, service: VerdictServiceDep, caller: ReaderDep
) -> VerdictOut | VerdictIncomplete:
    """Return a verdict with its whole transcript (an agent: one it asked)."""
    return await service.get(verdict_id, owner=caller.owner_scope)


@router.get(
    "/verdicts",
    response_model=VerdictPage,
    responses=_errors(UnauthorizedError, ForbiddenError),
)
async def list_verdicts(
    service: VerdictServiceDep,
    caller: ReaderDep,
    category: str | None = None,
    verdict: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VerdictPage:
    """List recorded verdicts, newest first, filtered by category, verdict, status or time.

    An agent sees only the verdicts it asked.
    """
    return await service.list(
        owner=caller.owner_scope,
        category=category,
        verdict=verdict,
        status=status,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
