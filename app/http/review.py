"""The reviewer's web page: pending proposals, their evidence and replay, decisions, history.

Server-rendered with Jinja2 and no script. Autoescaping is on (``*.html`` templates), so every
stored text (a question, a reason, a reviewer's comment) is shown as text, never as markup.
Handlers are as thin as the JSON API's and call the same services in the same request-scoped
unit of work (``app.http.trust``); a decision form posts here and is redirected (303) to the page
that shows its result.

    GET  /review                          pending proposals, decisions, weights history, audit
    GET  /review/proposals/{id}?flips=N   the decision first: what changes with its evidence,
                                          the replay, the form; then charts, flipped verdicts
                                          (a page from N), the stored evidence
    POST /review/proposals/{id}/approve   form fields reviewer, comment -> 303 /review?decided=
    POST /review/proposals/{id}/reject    the same
    POST /review/weights/rollback         form fields version (0: neutral), reviewer, comment
                                          -> 303 /review?restored=
    GET  /review/verdicts/{id}            a verdict's transcript and its outcome
    GET  /review/review.css               the stylesheet (no key needed: the sign-in page uses it)

Who may see them, the sign-in, and the CSRF, Origin and Host checks: ``app.http.review_auth``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.core.bounds import MAX_DB_INT, RowId
from app.core.errors import ConflictError, NotFoundError
from app.core.pages import Window
from app.deliberation.schemas import VerdictOut
from app.http import review_charts
from app.http.deps import SessionDep
from app.http.pages import HERE, page, path_for
from app.http.review_auth import PageFormDep, page_access
from app.http.trust import TrustDep, resolve_actor
from app.http.verdicts import VerdictReadsDep
from app.trust.decision import SUMMARISED, decision_summary, flip_page
from app.trust.evidence import evidence_view
from app.trust.models import ProposalStatus
from app.trust.outcomes import OutcomeService
from app.trust.schemas import Decision, ProposalOut, RollbackRequest
from app.trust.timeline import accuracy_over_time

AUDIT_LIMIT = 50
DECIDED_LIMIT = 20
PAST = {"approve": "approved", "reject": "rejected"}

# The stylesheet is public: the sign-in page needs it before anyone has signed in.
assets = APIRouter(prefix="/review", tags=["review"], include_in_schema=False)
# The pages decide weights: reviewers' (and admins') only, like the trust API.
router = APIRouter(
    prefix="/review", tags=["review"], include_in_schema=False, dependencies=[Depends(page_access)]
)


def _decision(form: dict[str, str]) -> dict[str, str]:
    return {name: form.get(name, "") for name in ("reviewer", "comment")}


def _missing(request: Request, error: NotFoundError) -> HTMLResponse:
    return page(request, "missing.html", status_code=404, detail=error.detail)


def _subject_url(request: Request, subject: str) -> str | None:
    """Return the page of an audit entry's subject (a proposal or a verdict), if it has one."""
    kind, _, key = subject.partition(":")
    if kind == "proposal" and key.isdigit():
        return path_for(request, "review_proposal", proposal_id=key)
    if kind == "verdict" and key:
        return path_for(request, "review_verdict", verdict_id=key)
    return None


@assets.get("/review.css", name="review_css")
async def stylesheet() -> FileResponse:
    """Serve the page's one stylesheet."""
    return FileResponse(HERE / "static" / "review.css", media_type="text/css")


@router.get("", name="review_index", response_class=HTMLResponse)
async def index(
    request: Request,
    trust: TrustDep,
    decided: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
    restored: Annotated[int | None, Query(ge=0, le=MAX_DB_INT)] = None,
) -> Response:
    """Show what awaits review, what was decided, the weights history and the audit log."""
    pending = await trust.proposals(Window(limit=50), status=ProposalStatus.PROPOSED.value)
    recent = await trust.proposals(Window(limit=DECIDED_LIMIT + len(pending.items)))
    audit = await trust.audit(Window(limit=AUDIT_LIMIT))
    notice: ProposalOut | None = None
    if decided is not None:
        try:
            notice = await trust.proposal(decided)
        except NotFoundError:
            notice = None
    return page(
        request,
        "index.html",
        notice=notice,
        restored=restored,
        pending=pending.items,
        decided=[p for p in recent.items if p.status is not ProposalStatus.PROPOSED],
        weights=await trust.weights(),
        versions=await trust.versions(),
        audit=[(entry, _subject_url(request, entry.subject)) for entry in audit.items],
        audit_total=audit.total,
        timeline=review_charts.accuracy_over_time(await accuracy_over_time(trust.repository)),
    )


async def _proposal_page(
    request: Request,
    session: SessionDep,
    proposal: ProposalOut,
    *,
    flips_offset: int = 0,
    error: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    summary = decision_summary(proposal)
    stored = {k: v for k, v in proposal.evidence.items() if k not in SUMMARISED}
    return page(
        request,
        "proposal.html",
        status_code=status_code,
        proposal=proposal,
        summary=summary,
        charts=[
            chart
            for chart in (
                review_charts.juror_accuracy(summary),
                review_charts.weights(summary),
                review_charts.reliability(proposal.evidence),
            )
            if chart is not None
        ],
        flips=await flip_page(session, proposal.replay.flips, offset=flips_offset),
        evidence=evidence_view(stored),
        error=error,
        form=form or {"reviewer": "", "comment": ""},
    )


@router.get("/proposals/{proposal_id}", name="review_proposal", response_class=HTMLResponse)
async def proposal_page(
    proposal_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
    request: Request,
    session: SessionDep,
    trust: TrustDep,
    flips: Annotated[int, Query(ge=0, le=MAX_DB_INT, description="First flip shown.")] = 0,
) -> Response:
    """Show one proposal: the decision first (changes, replay, form), then its flips."""
    try:
        proposal = await trust.proposal(proposal_id)
    except NotFoundError as exc:
        return _missing(request, exc)
    return await _proposal_page(request, session, proposal, flips_offset=flips)


async def _decide(
    request: Request,
    session: SessionDep,
    trust: TrustDep,
    proposal_id: int,
    action: Literal["approve", "reject"],
    form: dict[str, str],
) -> Response:
    """Approve or reject through the service; on failure show the proposal and what went wrong."""
    try:
        proposal = await trust.proposal(proposal_id)
    except NotFoundError as exc:
        return _missing(request, exc)
    failed = f"Not {PAST[action]}"
    try:
        body = Decision.model_validate(form)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        error = f"{failed}: {problems}."
        return await _proposal_page(
            request, session, proposal, error=error, status_code=422, form=form
        )
    decide = trust.approve if action == "approve" else trust.reject
    try:
        await decide(
            proposal_id, reviewer=resolve_actor(request, body.reviewer), comment=body.comment
        )
    except ConflictError as exc:
        # Nothing of the failed step may be committed with the page that reports it.
        await session.rollback()
        proposal = await trust.proposal(proposal_id)
        error = f"{failed}: {exc.detail}."
        return await _proposal_page(
            request, session, proposal, error=error, status_code=409, form=form
        )
    url = f"{path_for(request, 'review_index')}?decided={proposal_id}"
    return RedirectResponse(url, status_code=303)


@router.post("/proposals/{proposal_id}/approve", name="review_approve")
async def approve(
    proposal_id: RowId,
    request: Request,
    session: SessionDep,
    trust: TrustDep,
    form: PageFormDep,
) -> Response:
    """Approve a pending proposal: its version becomes the active one."""
    return await _decide(request, session, trust, proposal_id, "approve", _decision(form))


@router.post("/proposals/{proposal_id}/reject", name="review_reject")
async def reject(
    proposal_id: RowId,
    request: Request,
    session: SessionDep,
    trust: TrustDep,
    form: PageFormDep,
) -> Response:
    """Reject a pending proposal; the weights in force do not change."""
    return await _decide(request, session, trust, proposal_id, "reject", _decision(form))


@router.post("/weights/rollback", name="review_rollback")
async def rollback(
    request: Request, session: SessionDep, trust: TrustDep, form: PageFormDep
) -> Response:
    """Make an earlier version, or the neutral weights (version 0), active again."""
    fields = {name: form.get(name, "") for name in ("version", "reviewer", "comment")}
    try:
        body = RollbackRequest.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _refused_rollback(request, f"Not restored: {problems}.", 422)
    reviewer = resolve_actor(request, body.reviewer)
    try:
        await trust.rollback(body.version, reviewer=reviewer, comment=body.comment)
    except (ConflictError, NotFoundError) as exc:
        await session.rollback()
        return _refused_rollback(request, f"Not restored: {exc.detail}.", exc.status_code)
    url = f"{path_for(request, 'review_index')}?restored={body.version}"
    return RedirectResponse(url, status_code=303)


def _refused_rollback(request: Request, message: str, status_code: int) -> HTMLResponse:
    return page(request, "refused.html", status_code=status_code, message=message)


@router.get("/verdicts/{verdict_id}", name="review_verdict", response_class=HTMLResponse)
async def verdict_page(
    verdict_id: str, request: Request, verdicts: VerdictReadsDep, trust: TrustDep
) -> Response:
    """Show a verdict's whole transcript and the outcome recorded for it."""
    try:
        verdict = await verdicts.get(verdict_id)
        outcomes = await OutcomeService(trust).history(verdict_id)
    except NotFoundError as exc:
        return _missing(request, exc)
    complete = verdict if isinstance(verdict, VerdictOut) else None
    return page(request, "verdict.html", verdict=verdict, complete=complete, outcomes=outcomes)
