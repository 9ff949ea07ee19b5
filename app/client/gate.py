"""The gate: ask Jury before an action runs; run it only on an approving, unescalated verdict.

    with gate(jury, category="deploy", question="Ship 4.2?", action=deploy_call):
        deploy("4.2")

The gate asks for a verdict when the block (or the decorated function) is entered. It proceeds
only when the verdict is ``proceed_on`` (the request's first option unless given: ``approve`` of
``approve/reject``, ``yes`` of ``yes/no``) and ``escalate`` is false; a fail-open answer is always
escalated, so it never proceeds. Otherwise it raises ``Escalated`` or ``Rejected``, carrying the
verdict and its id for the human hand-off, and the action does not run. A verdict Jury could not
reach at all raises the client's own error (``NoQuorum``, ``TransportError``, ...): the action
does not run either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from app.client.client import AsyncJuryClient, JuryClient
from app.client.errors import Escalated, Rejected
from app.deliberation.schemas import VerdictOut


def check(verdict: VerdictOut, *, proceed_on: str | None = None) -> VerdictOut:
    """Return ``verdict`` if it lets the action run; else raise ``Escalated`` or ``Rejected``."""
    approving = proceed_on or verdict.options[0]
    if verdict.verdict != approving:
        raise Rejected(verdict, proceed_on=approving)
    if verdict.escalate:
        raise Escalated(verdict)
    return verdict


@contextmanager
def gate(
    client: JuryClient,
    *,
    question: str,
    category: str = "default",
    proceed_on: str | None = None,
    **fields: Any,
) -> Iterator[VerdictOut]:
    """Ask Jury, then run the block (or decorated function) only if the verdict lets it.

    ``fields`` are those of ``request_verdict`` (``action``, ``context``, ``options``, ...).
    """
    verdict = client.request_verdict(question, category=category, **fields)
    yield check(verdict, proceed_on=proceed_on)


@asynccontextmanager
async def async_gate(
    client: AsyncJuryClient,
    *,
    question: str,
    category: str = "default",
    proceed_on: str | None = None,
    **fields: Any,
) -> AsyncIterator[VerdictOut]:
    """The gate for async agent code: ``async with async_gate(...)`` or as a decorator."""
    verdict = await client.request_verdict(question, category=category, **fields)
    yield check(verdict, proceed_on=proceed_on)
