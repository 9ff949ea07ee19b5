"""HTTP endpoints of outcomes and the trust workflow: parse, call the service, return."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.core.bounds import RowId
from app.core.errors import (
    ConflictError,
    InvalidRequestError,
    JuryError,
    NotFoundError,
)
from app.http.auth import ReaderDep, Reviewer
from app.http.deps import AuditWindowDep, RuntimeDep, SessionDep, WindowDep
from app.http.errors import AUTHENTICATED, WITH_BODY, error_responses
from app.http.verdicts import VerdictReadsDep
from app.security.principal import Principal
from app.trust.models import ProposalKind, ProposalStatus
from app.trust.outcomes import OutcomeService
from app.trust.schemas import (
    AuditPage,
    Decision,
    OutcomeCreate,
    OutcomeHistory,
    OutcomeOut,
    ProposalCreate,
    ProposalOut,
    ProposalPage,
    RollbackRequest,
    StatsOut,
    VersionOut,
    WeightsOut,
)
from app.trust.service import TrustService

router = APIRouter(tags=["trust"], responses=error_responses(*AUTHENTICATED))


async def get_trust_service(runtime: RuntimeDep, session: SessionDep) -> TrustService:
    """Return a trust service bound to the request's session."""
    return TrustService(session, config=runtime.config, policy=runtime.trust_policy)


TrustDep = Annotated[TrustService, Depends(get_trust_service)]


def resolve_actor(request: Request, claimed: str) -> str:
    """Return who performs a step, for the audit log.

    The one place that decides it: the authenticated API key's name whenever the request
    carried a key, whatever the body claims; in local mode (no key exists) the name the body
    gives.
    """
    return actor_for(getattr(request.state, "principal", None), claimed)


def actor_for(principal: Principal | None, claimed: str) -> str:
    """Return the key's name when the caller presented one, else the name it claims."""
    if principal is not None and principal.authenticated:
        return principal.name
    return claimed


def _errors(*errors: type[JuryError]) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI errors of a trust route: the authentication ones, then ``errors``."""
    return error_responses(*AUTHENTICATED, *errors)


@router.post(
    "/verdicts/{verdict_id}/outcome",
    status_code=201,
    response_model=OutcomeOut,
    responses=_errors(*WITH_BODY, NotFoundError, ConflictError, InvalidRequestError),
    tags=["outcomes"],
)
async def post_outcome(
    caller: ReaderDep,
    verdict_id: str,
    body: OutcomeCreate,
    request: Request,
    verdicts: VerdictReadsDep,
    trust: TrustDep,
) -> OutcomeOut:
    """Record the correct option of a verdict; a second one must say it corrects the first.

    An agent reports outcomes of the verdicts it asked only.
    """
    await verdicts.ensure_visible(verdict_id, owner=caller.owner_scope)
    actor = resolve_actor(request, body.reported_by or body.source.value)
    return await OutcomeService(trust).record(verdict_id, body, actor=actor)


@router.get(
    "/verdicts/{verdict_id}/outcomes",
    response_model=OutcomeHistory,
    responses=_errors(NotFoundError),
    tags=["outcomes"],
)
async def get_outcomes(
    caller: ReaderDep, verdict_id: str, verdicts: VerdictReadsDep, trust: TrustDep
) -> OutcomeHistory:
    """Return a verdict's outcomes, the one in force first (an agent: of its own verdicts)."""
    await verdicts.ensure_visible(verdict_id, owner=caller.owner_scope)
    return await OutcomeService(trust).history(verdict_id)


@router.get("/trust/stats", dependencies=[Reviewer], response_model=StatsOut)
async def get_stats(trust: TrustDep, category: str | None = None) -> StatsOut:
    """Return trust statistics per juror, judge and baseline, per category."""
    return await trust.stats(category=category)


@router.get("/trust/weights", dependencies=[Reviewer], response_model=WeightsOut)
async def get_weights(trust: TrustDep) -> WeightsOut:
    """Return the weights in force (version null: neutral)."""
    return await trust.weights()


@router.get("/trust/weights/versions", dependencies=[Reviewer], response_model=list[VersionOut])
async def get_versions(trust: TrustDep) -> list[VersionOut]:
    """Return every approved weights version, newest first."""
    return await trust.versions()


@router.post(
    "/trust/weights/rollback",
    dependencies=[Reviewer],
    response_model=WeightsOut,
    responses=_errors(*WITH_BODY, NotFoundError, ConflictError),
)
async def post_rollback(body: RollbackRequest, request: Request, trust: TrustDep) -> WeightsOut:
    """Make an earlier weights version active again (0: the neutral weights)."""
    reviewer = resolve_actor(request, body.reviewer)
    return await trust.rollback(body.version, reviewer=reviewer, comment=body.comment)


@router.post(
    "/trust/proposals",
    dependencies=[Reviewer],
    status_code=201,
    response_model=ProposalOut,
    responses=_errors(*WITH_BODY, ConflictError),
)
async def post_proposal(body: ProposalCreate, request: Request, trust: TrustDep) -> ProposalOut:
    """Compute a proposal from the record and store it for review; nothing is applied."""
    return await trust.propose(body, actor=resolve_actor(request, body.created_by))


@router.get("/trust/proposals", dependencies=[Reviewer], response_model=ProposalPage)
async def list_proposals(
    trust: TrustDep,
    status: ProposalStatus | None = None,
    kind: ProposalKind | None = None,
    *,
    window: WindowDep,
) -> ProposalPage:
    """List proposals, newest first."""
    return await trust.proposals(
        window, status=status.value if status else None, kind=kind.value if kind else None
    )


@router.get(
    "/trust/proposals/{proposal_id}",
    dependencies=[Reviewer],
    response_model=ProposalOut,
    responses=_errors(NotFoundError),
)
async def get_proposal(proposal_id: RowId, trust: TrustDep) -> ProposalOut:
    """Return a proposal with its evidence and replay."""
    return await trust.proposal(proposal_id)


@router.post(
    "/trust/proposals/{proposal_id}/approve",
    dependencies=[Reviewer],
    response_model=ProposalOut,
    responses=_errors(*WITH_BODY, NotFoundError, ConflictError),
)
async def approve_proposal(
    proposal_id: RowId, body: Decision, request: Request, trust: TrustDep
) -> ProposalOut:
    """Approve a pending proposal: its version is created and made active."""
    reviewer = resolve_actor(request, body.reviewer)
    return await trust.approve(proposal_id, reviewer=reviewer, comment=body.comment)


@router.post(
    "/trust/proposals/{proposal_id}/reject",
    dependencies=[Reviewer],
    response_model=ProposalOut,
    responses=_errors(*WITH_BODY, NotFoundError, ConflictError),
)
async def reject_proposal(
    proposal_id: RowId, body: Decision, request: Request, trust: TrustDep
) -> ProposalOut:
    """Reject a pending proposal."""
    reviewer = resolve_actor(request, body.reviewer)
    return await trust.reject(proposal_id, reviewer=reviewer, comment=body.comment)


@router.post(
    "/trust/rollback-check",
    dependencies=[Reviewer],
    response_model=ProposalOut | None,
    responses=_errors(ConflictError),
)
async def post_rollback_check(trust: TrustDep) -> ProposalOut | None:
    """Run the rollback check now; returns the rollback proposal it made, or null."""
    return await trust.check_rollback()


@router.get("/trust/audit", dependencies=[Reviewer], response_model=AuditPage)
async def get_audit(
    trust: TrustDep,
    subject: str | None = None,
    *,
    window: AuditWindowDep,
) -> AuditPage:
    """List every step of the trust workflow, newest first: who, when, what, why."""
    return await trust.audit(window, subject=subject)
