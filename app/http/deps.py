"""The HTTP dependencies every router shares: the runtime, the request's session, errors.

Handlers declare what they need as ``Annotated`` aliases (``runtime: RuntimeDep``); the
runtime is built once in the lifespan (``app.http.app``) and read here, and only here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from app.core.errors import JuryError
from app.core.pages import Window
from app.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """Return the process's runtime, built in the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def window(
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0
) -> Window:
    """Return the page a listing asks for (``limit``, ``offset``)."""
    return Window(limit=limit, offset=offset)


def audit_window(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0
) -> Window:
    """Return the page of the audit log asked for: longer pages than other listings."""
    return Window(limit=limit, offset=offset)


WindowDep = Annotated[Window, Depends(window)]
AuditWindowDep = Annotated[Window, Depends(audit_window)]


def error_responses(*errors: type[JuryError]) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` of a route that may answer with ``errors``."""
    return {error.status_code: {"description": error.__doc__} for error in errors}
