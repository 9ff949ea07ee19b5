"""Admin endpoints: API keys and the configuration in force."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import session_scope
from app.core.errors import ConflictError, NotFoundError
from app.http.auth import Admin
from app.runtime import Runtime
from app.security.schemas import KeyCreate, KeyCreated, KeyOut
from app.security.service import KeyService

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Admin])


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's unit of work, committed before the response is sent.

    After a committed change (a key created or revoked), the process's cached key lookups
    are dropped: a revoked key stops at once here.
    """
    runtime: Runtime = request.app.state.runtime
    async with session_scope(runtime.sessionmaker) as session:
        yield session
    if request.method not in ("GET", "HEAD"):
        runtime.auth.forget()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _errors(*errors: type[Any]) -> dict[int | str, dict[str, Any]]:
    return {error.status_code: {"description": error.__doc__} for error in errors}


@router.get("/keys", response_model=list[KeyOut])
async def list_keys(session: SessionDep) -> list[KeyOut]:
    """List every API key (prefixes only), revoked ones included."""
    return await KeyService(session).list()


@router.post("/keys", status_code=201, response_model=KeyCreated, responses=_errors(ConflictError))
async def create_key(body: KeyCreate, session: SessionDep) -> KeyCreated:
    """Create a key; the response is the only time the key itself is shown."""
    return await KeyService(session).create(body)


@router.post(
    "/keys/{key}/revoke", response_model=KeyOut, responses=_errors(NotFoundError, ConflictError)
)
async def revoke_key(key: str, session: SessionDep) -> KeyOut:
    """Revoke a key by name or id; requests with it are refused from now on."""
    return await KeyService(session).revoke(key)


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    """Return the configuration in force (it names credential variables, never holds secrets)."""
    runtime: Runtime = request.app.state.runtime
    config: dict[str, Any] = runtime.config.model_dump(mode="json")
    return config
