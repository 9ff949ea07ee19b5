"""FastAPI dependencies that authenticate a request and check its role.

Handlers declare what they need as ``Annotated`` aliases: ``caller: AgentDep`` admits agents
(and admins); ``dependencies=[Reviewer]`` admits reviewers (and admins) to a route or a whole
router that needs no caller. Every route's roles are pinned by tests/security/test_role_matrix.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.errors import ForbiddenError, HostNotAllowedError
from app.http.deps import RuntimeDep
from app.http.sessions import host_allowed
from app.security.models import Role
from app.security.principal import Principal

bearer = HTTPBearer(
    auto_error=False,
    description="An API key created with `jury keys create`. Not needed in local mode "
    "(no key exists).",
)


async def authenticate(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Return the request's caller; ``resolve_actor`` reads it back from ``request.state``.

    A keyless caller (local mode) is admitted only under an allowed Host name: a key is what a
    rebinding page cannot send, so with keys on the key check suffices.
    """
    principal = await runtime.auth.authenticate(credentials.credentials if credentials else None)
    if not principal.authenticated and not host_allowed(
        request.headers.get("host", ""), runtime.settings.allowed_hosts
    ):
        raise HostNotAllowedError(
            "this server does not answer to the host name in the request without an API key "
            "(JURY_ALLOWED_HOSTS lists the names it answers to)"
        )
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Return a dependency admitting callers that hold one of ``roles`` (admins always)."""
    allowed = ", ".join(sorted({*roles, Role.ADMIN}))

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.may(roles):
            raise ForbiddenError(
                f"the '{principal.role}' role may not do this; it needs one of: {allowed}",
                role=principal.role.value,
            )
        return principal

    return check


# Handlers that need the caller:
AgentDep = Annotated[Principal, Depends(require(Role.AGENT))]
ReaderDep = Annotated[Principal, Depends(require(Role.AGENT, Role.REVIEWER))]

# Routes and routers that only need the check (``dependencies=[Reviewer]``):
Reviewer = Depends(require(Role.REVIEWER))
Admin = Depends(require(Role.ADMIN))
