"""The HTTP dependencies every router shares: the runtime, the request's session, pages.

Handlers declare what they need as ``Annotated`` aliases (``runtime: RuntimeDep``); the
runtime is built once in the lifespan (``app.http.app``) and read here, and only here.

Every dependency is ``async def``, even one that never awaits: FastAPI runs a plain ``def``
dependency in its thread pool, a hand-off to a thread and back for each (two per verdict, a
few tenths of a millisecond of CPU), where an ``async def`` one runs inline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.bounds import Count
from app.core.db import session_scope
from app.core.pages import Window
from app.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """Return the process's runtime, built in the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Yield the request's unit of work: committed before the response is sent.

    After a committed change, the process's caches of what a change may touch are dropped:
    the trust settings verdicts reuse (the next one reads the active version) and the key
    lookups (a revoked key stops at once here).
    """
    async with session_scope(runtime.sessionmaker) as session:
        yield session
    if request.method not in ("GET", "HEAD"):
        runtime.trust.invalidate()
        runtime.auth.forget()


# scope="function": the commit happens before the response, so a failed commit is an error
# the client sees, never a 201 for something that was not stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# Where a page starts: bounded like every integer a request holds (app.core.bounds).
Offset = Annotated[Count, Query(description="How many items to skip.")]


async def window(limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0) -> Window:
    """Return the page a listing asks for (``limit``, ``offset``)."""
    return Window(limit=limit, offset=offset)


async def audit_window(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0
) -> Window:
    """Return the page of the audit log asked for: longer pages than other listings."""
    return Window(limit=limit, offset=offset)


WindowDep = Annotated[Window, Depends(window)]
AuditWindowDep = Annotated[Window, Depends(audit_window)]
