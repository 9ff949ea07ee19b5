"""Who is calling: an API key's name and role, or the local user when no key exists."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from app.security.models import Role

KEY_PREFIX = "jury_"
PREFIX_CHARS = 12  # "jury_" and 7 random characters: enough to tell keys apart, useless to guess
LOCAL_NAME = "local"


def new_key() -> str:
    """Return a new random API key (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Return the stored form of a key.

    A plain SHA-256 is enough: the key is 256 random bits, not a password, so there is no
    dictionary to slow down, and the lookup by hash stays one indexed query.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    """Return the non-secret start of a key, shown in listings."""
    return key[:PREFIX_CHARS]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request or command."""

    name: str
    role: Role
    key_id: int | None = None

    @property
    def authenticated(self) -> bool:
        """Return whether the caller proved who it is with a key (not local mode)."""
        return self.key_id is not None

    def may(self, roles: Iterable[Role]) -> bool:
        """Return whether the caller holds one of ``roles``; an admin holds them all."""
        return self.role == Role.ADMIN or self.role in set(roles)

    @property
    def owner_scope(self) -> int | None:
        """Return the key whose verdicts alone this caller may read, or None for all."""
        return self.key_id if self.role == Role.AGENT else None


LOCAL = Principal(name=LOCAL_NAME, role=Role.ADMIN)
