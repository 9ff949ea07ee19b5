"""What each MCP tool does, on the same services as the REST API (no MCP SDK here).

A verdict asked over MCP is always recorded and queued first, then awaited: an MCP client gives up
after about a minute and a local panel can take longer, so when the wait runs out the tool answers
``status: pending`` with the verdict's id and the deliberation goes on. ``get_verdict`` awaits it
again, from the same record: nothing is lost, nothing is deliberated twice. While it waits, every
progress event (the ones ``GET /verdicts/{id}/events`` streams) goes to the client as an MCP
progress notification.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, cast

import anyio

from app.core.db import session_scope
from app.core.errors import ForbiddenError, JuryError
from app.deliberation.events import TERMINAL_EVENTS, Event
from app.deliberation.schemas import VerdictIncomplete, VerdictOut, VerdictRequest
from app.http.mcp.schemas import (
    GetVerdictArgs,
    PanelsOut,
    ReportOutcomeArgs,
    RequestVerdictArgs,
    VerdictReply,
)
from app.http.trust import actor_for
from app.runtime import Runtime
from app.security.models import Role
from app.security.principal import Principal
from app.trust.outcomes import OutcomeService
from app.trust.schemas import OutcomeCreate, OutcomeOut, WeightsOut
from app.trust.service import TrustService
from app.verdicts.progress import IN_FLIGHT, Entry
from app.verdicts.record.verdict import no_quorum_error

# Report one progress event: its number so far and the event as JSON (as SSE sends it).
Report = Callable[[int, str], Awaitable[None]]


class RecordedError(JuryError):
    """An error answer recorded earlier (replayed for an Idempotency-Key, or a failed verdict)."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("detail", "")))
        self._status = status_code
        self._body = body

    def body(self) -> dict[str, Any]:
        """Return the recorded body as it was."""
        return dict(self._body)


def require(caller: Principal, *roles: Role) -> None:
    """Refuse a caller without one of ``roles`` (admins hold them all), as REST does."""
    if not caller.may(roles):
        allowed = ", ".join(sorted({*roles, Role.ADMIN}))
        raise ForbiddenError(
            f"the '{caller.role}' role may not do this; it needs one of: {allowed}",
            role=caller.role.value,
        )


class JuryTools:
    """The MCP tools' use cases; ``runtime`` returns the process's runtime once it is open."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    async def request_verdict(
        self, caller: Principal, args: RequestVerdictArgs, report: Report
    ) -> VerdictReply:
        """Record and queue a verdict, then await it for the wait."""
        require(caller, Role.AGENT)
        runtime = self._runtime()
        request = VerdictRequest.model_validate(
            args.model_dump(exclude={"idempotency_key", "wait_s"}, exclude_unset=True)
        )
        reply = await runtime.intake.submit(
            request, caller=caller, idempotency_key=args.idempotency_key, respond_async=True
        )
        if reply.status_code >= 400:
            raise RecordedError(reply.status_code, reply.body)
        if reply.status_code == 200:
            # A replayed synchronous verdict: the key was first used with POST /verdict.
            verdict = VerdictOut.model_validate(reply.body)
            return VerdictReply(id=verdict.id, status="completed", verdict=verdict)
        return await self._await(runtime, caller, str(reply.body["id"]), args.wait_s, report)

    async def get_verdict(
        self, caller: Principal, args: GetVerdictArgs, report: Report
    ) -> VerdictReply:
        """Return a verdict, awaiting it for the wait if it is still being decided."""
        require(caller, Role.AGENT, Role.REVIEWER)
        return await self._await(self._runtime(), caller, args.id, args.wait_s, report)

    async def report_outcome(self, caller: Principal, args: ReportOutcomeArgs) -> OutcomeOut:
        """Record what turned out to be right for a verdict (an agent: one it asked)."""
        require(caller, Role.AGENT, Role.REVIEWER)
        runtime = self._runtime()
        await runtime.verdict_reads.ensure_visible(args.verdict_id, owner=caller.owner_scope)
        outcome = OutcomeCreate.model_validate(args.model_dump(exclude={"verdict_id"}))
        actor = actor_for(caller, outcome.reported_by or outcome.source.value)
        async with session_scope(runtime.sessionmaker) as session:
            trust = TrustService(session, config=runtime.config, policy=runtime.trust_policy)
            recorded = await OutcomeService(trust).record(args.verdict_id, outcome, actor=actor)
        runtime.trust.invalidate()
        return recorded

    async def list_panels(self, caller: Principal) -> PanelsOut:
        """Describe the panels and categories a verdict can ask for."""
        require(caller, Role.AGENT, Role.REVIEWER)
        return PanelsOut.of(self._runtime().config)

    async def trust_weights(self, caller: Principal) -> WeightsOut:
        """Return the trust weights in force (a reviewer's tool)."""
        require(caller, Role.REVIEWER)
        runtime = self._runtime()
        async with session_scope(runtime.sessionmaker) as session:
            trust = TrustService(session, config=runtime.config, policy=runtime.trust_policy)
            return await trust.weights()

    async def _await(
        self,
        runtime: Runtime,
        caller: Principal,
        verdict_id: str,
        wait_s: float | None,
        report: Report,
    ) -> VerdictReply:
        """Relay the verdict's progress until it ends or the wait runs out; then read it."""
        wait = runtime.settings.mcp_wait_s if wait_s is None else wait_s
        followed = await runtime.progress.follow(verdict_id, owner=caller.owner_scope, after=None)
        # An async generator: closed here, in this task, when the wait runs out.
        stream = cast("AsyncGenerator[Entry | None, None]", followed)
        relayed = 0
        with anyio.move_on_after(wait):
            async with aclosing(stream):
                async for entry in stream:
                    if entry is None:
                        continue
                    relayed += 1
                    event: Event = entry[1]
                    await report(relayed, event.model_dump_json(exclude_none=True))
                    if event.type in TERMINAL_EVENTS:
                        break
        record = await runtime.verdict_reads.get(verdict_id, owner=caller.owner_scope)
        return _reply(record)


def _reply(record: VerdictOut | VerdictIncomplete) -> VerdictReply:
    """Answer the verdict, pending, or the error that ended it (with the REST codes)."""
    if isinstance(record, VerdictOut):
        return VerdictReply(id=record.id, status="completed", verdict=record)
    if record.status in IN_FLIGHT:
        return VerdictReply.pending(record.id)
    error = record.error or {}
    if record.status == "no_quorum":
        if record.fail_open is not None:
            return VerdictReply(id=record.id, status="completed", verdict=record.fail_open)
        raise no_quorum_error(error)
    body = {"error": record.status, **error, "id": record.id}
    raise RecordedError(500, body)
