"""API keys: creating, listing and revoking them, and authenticating a request by its key.

With no key ever created Jury runs in local mode: every caller is the local admin. Once a key
exists, every request must carry one, and Jury never goes back to local mode by itself: the
database remembers that keys existed (``auth_state``), so revoking every key and restarting still
requires a key. Only ``reopen_local`` (``JURY_REOPEN_LOCAL_MODE``, an admin's explicit choice)
lets a process with no active key start in local mode again.
"""

from __future__ import annotations

import logging

from cachetools import TTLCache
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.bounds import MAX_DB_INT
from app.core.clock import Monotonic, monotonic, utcnow
from app.core.db import SessionMaker, session_scope
from app.core.errors import (
    ConflictError,
    DatabaseError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from app.security.models import ApiKey, Role
from app.security.principal import LOCAL, Principal, hash_key, key_prefix, new_key
from app.security.repository import KeyRepository
from app.security.schemas import KeyCreate, KeyCreated, KeyOut

logger = logging.getLogger("jury.security")

# Distinct keys whose lookups a process keeps; past this the oldest are read again.
KEY_CACHE_SIZE = 10_000


class KeyService:
    """Create, list and revoke keys inside the caller's unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._repo = KeyRepository(session)

    async def create(self, body: KeyCreate) -> KeyCreated:
        """Store a new key's hash and return the key, shown this once."""
        if await self._repo.by_name(body.name) is not None:
            raise ConflictError(f"a key named '{body.name}' already exists", name=body.name)
        key = new_key()
        await self._repo.note_keys_exist(utcnow())
        row = await self._repo.add(
            ApiKey(
                name=body.name,
                role=body.role.value,
                prefix=key_prefix(key),
                key_hash=hash_key(key),
            )
        )
        return KeyCreated(**KeyOut.model_validate(row).model_dump(), key=key)

    async def list(self) -> list[KeyOut]:
        """Return every key, revoked ones included, oldest first."""
        return [KeyOut.model_validate(row) for row in await self._repo.all()]

    async def revoke(self, name_or_id: str) -> KeyOut:
        """Revoke a key named, or numbered, ``name_or_id``.

        It stops working at once in the process that revoked it, and within
        ``JURY_AUTH_CACHE_S`` in others (they reuse a key lookup that long).
        """
        row = await self._find(name_or_id)
        assert row.id is not None
        if not await self._repo.revoke(row.id, utcnow()):
            raise ConflictError(f"key '{row.name}' is already revoked", name=row.name)
        await self._repo.session.refresh(row)
        return KeyOut.model_validate(row)

    async def _find(self, name_or_id: str) -> ApiKey:
        row = await self._repo.by_name(name_or_id)
        # An ASCII number within the id column's range: anything else is only a name.
        if row is None and name_or_id.isascii() and name_or_id.isdigit():
            key_id = int(name_or_id)
            row = await self._repo.session.get(ApiKey, key_id) if key_id <= MAX_DB_INT else None
        if row is None:
            raise NotFoundError(f"no key named or numbered '{name_or_id}'", key=name_or_id)
        return row


async def keys_required(repo: KeyRepository, *, reopen_local: bool = False) -> bool:
    """Return whether requests need a key: one is active, or keys existed and local mode is shut.

    ``reopen_local``: an admin has said that, with every key revoked, local mode may return.
    """
    if await repo.any_active():
        return True
    return not reopen_local and await repo.keys_ever_existed()


class Authenticator:
    """Turn a request's bearer key into a ``Principal``; built once per process.

    Each lookup is reused for ``cache_s`` (a key's principal, and local mode's "no key exists
    yet"), so that a request costs no query: a key revoked through this process stops at once
    (``forget``); one revoked elsewhere within ``cache_s``.
    """

    def __init__(
        self,
        sessionmaker: SessionMaker,
        *,
        require_keys: bool = False,
        reopen_local: bool = False,
        cache_s: float = 0.0,
        clock: Monotonic = monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._required = require_keys
        self._reopen_local = reopen_local
        self._cache_s = cache_s
        self._clock = clock
        # Unknown keys are cached too: guessing keys must not cost a query per guess.
        self._keys: TTLCache[str, Principal | None] = TTLCache(
            maxsize=KEY_CACHE_SIZE, ttl=max(cache_s, 1e-9), timer=clock
        )
        self._local_until = 0.0

    @property
    def required(self) -> bool:
        """Return whether a key is known to be required (keys exist, or settings say so)."""
        return self._required

    def forget(self) -> None:
        """Drop every cached lookup (a key was created or revoked through this process)."""
        self._keys.clear()
        self._local_until = 0.0

    async def start(self) -> None:
        """Note at start-up whether keys exist, and say which mode Jury runs in."""
        try:
            required = await self.keys_required()
        except (UnavailableError, DatabaseError) as exc:
            # A database that is down at start-up is /readyz's to report, not a reason to die.
            logger.warning("API keys not checked at start-up: %s", exc.detail)
            return
        if not required and self._reopen_local:
            logger.warning(
                "local mode reopened (JURY_REOPEN_LOCAL_MODE): no active API key, requests are "
                "not authenticated"
            )
        elif not required:
            logger.warning("local mode: no API key exists, requests are not authenticated")

    async def authenticate(self, key: str | None) -> Principal:
        """Return the caller of a request that presented ``key`` (None: no key)."""
        if key is not None:
            return await self._verify(key)
        if await self.keys_required():
            raise UnauthorizedError("an API key is required: send 'Authorization: Bearer <key>'")
        return LOCAL

    async def keys_required(self) -> bool:
        """Return whether requests need a key; once true, it stays true for the process."""
        if not self._required and self._clock() >= self._local_until:
            checked_at = self._clock()
            async with session_scope(self._sessionmaker) as session:
                self._required = await keys_required(
                    KeyRepository(session), reopen_local=self._reopen_local
                )
            self._local_until = checked_at + self._cache_s
        return self._required

    async def authenticate_digest(self, digest: str) -> Principal:
        """Return the caller whose key hashes to ``digest`` (a review page's session).

        The session holds the stored form of the key, never the key: a revoked key ends its
        sessions as it ends its bearer requests.
        """
        return await self._verify_digest(digest)

    async def _verify(self, key: str) -> Principal:
        return await self._verify_digest(hash_key(key))

    async def _verify_digest(self, digest: str) -> Principal:
        if digest in self._keys:
            principal = self._keys[digest]
        else:
            principal = await self._lookup(digest)
            if self._cache_s > 0:
                self._keys[digest] = principal
        if principal is None:
            raise UnauthorizedError("unknown or revoked API key")
        # A key presented proves keys exist: local mode is over.
        self._required = True
        return principal

    async def _lookup(self, digest: str) -> Principal | None:
        async with session_scope(self._sessionmaker) as session:
            row = await KeyRepository(session).by_hash(digest)
        if row is None or row.revoked_at is not None or row.id is None:
            return None
        return Principal(name=row.name, role=Role(row.role), key_id=row.id)
