"""Admin endpoints: API keys and the configuration in force."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.core.errors import ConflictError, NotFoundError
from app.http.auth import Admin
from app.http.deps import RuntimeDep, SessionDep
from app.http.errors import AUTHENTICATED, WITH_BODY, error_responses
from app.security.schemas import KeyCreate, KeyCreated, KeyOut
from app.security.service import KeyService

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Admin],
    responses=error_responses(*AUTHENTICATED),
)


@router.get("/keys", response_model=list[KeyOut])
async def list_keys(session: SessionDep) -> list[KeyOut]:
    """List every API key (prefixes only), revoked ones included."""
    return await KeyService(session).list()


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyCreated,
    responses=error_responses(*AUTHENTICATED, *WITH_BODY),
)
async def create_key(body: KeyCreate, session: SessionDep) -> KeyCreated:
    """Create a key; the response is the only time the key itself is shown."""
    return await KeyService(session).create(body)


@router.post(
    "/keys/{key}/revoke",
    response_model=KeyOut,
    responses=error_responses(*AUTHENTICATED, NotFoundError, ConflictError),
)
async def revoke_key(key: str, session: SessionDep) -> KeyOut:
    """Revoke a key by name or id; requests with it are refused from now on."""
    return await KeyService(session).revoke(key)


@router.get("/config")
async def get_config(runtime: RuntimeDep) -> dict[str, Any]:
    """Return the configuration in force (it names credential variables, never holds secrets)."""
    config: dict[str, Any] = runtime.config.model_dump(mode="json")
    return config
