"""The review pages' browser session: a signed, expiring cookie, its CSRF token, Host and Origin.

A browser cannot send a bearer key, so a reviewer signs in once with one and gets a cookie:

- **signed, not stored**: itsdangerous (the Pallets signer Flask and Starlette's sessions use)
  signs ``{"sid": random, "key": sha256 of the key or null}`` with a timestamp, so the server
  keeps no session table and a replica with the same ``JURY_SESSION_SECRET`` reads it. The key
  itself is never in it; a revoked key ends its sessions (``Authenticator.authenticate_digest``).
- **expiring**: refused ``JURY_SESSION_TTL_S`` after sign-in, whatever the browser keeps.
- **HttpOnly, SameSite=Strict**, and Secure when the page was served over TLS.

Every form POST carries a CSRF token derived from the session id (HMAC under the same secret),
so a page of another origin, which can make the browser post but cannot read our pages, cannot
forge it; its Origin header is checked too. The Host header is checked against
``JURY_ALLOWED_HOSTS`` before anything else, which stops DNS rebinding (a hostile name that
resolves to this server is not one of ours), and no URL a page shows is built from it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from app.core.settings import Settings

COOKIE = "jury_review"
CSRF_FIELD = "csrf"
SALT = "jury.review.session"
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """What a session cookie says: its id and, once signed in, the key's stored hash."""

    sid: str
    key_digest: str | None = None
    fresh: bool = False  # made for this request: the response must set it


class Sessions:
    """Issue and read session cookies and their CSRF tokens; built once per app."""

    def __init__(self, secret: str, *, ttl_s: int, clock: Clock = time.time) -> None:
        self.ttl_s = ttl_s
        self._secret = secret.encode()
        # itsdangerous reads the time from its signer: hand it our clock, so that a test can
        # move time instead of waiting for a session to expire.
        signer = type("ClockedSigner", (TimestampSigner,), {"get_timestamp": _stamp(clock)})
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT, signer=signer)

    @classmethod
    def from_settings(cls, settings: Settings) -> Sessions:
        """Use the configured secret, or a random one for this process only."""
        configured = settings.session_secret
        secret = configured.get_secret_value() if configured else secrets.token_urlsafe(32)
        return cls(secret, ttl_s=settings.session_ttl_s)

    def new(self, key_digest: str | None = None) -> BrowserSession:
        """Return a new session (a new id at sign-in: no session fixation)."""
        return BrowserSession(sid=secrets.token_urlsafe(16), key_digest=key_digest, fresh=True)

    def dump(self, session: BrowserSession) -> str:
        """Return the signed cookie value of a session."""
        return self._serializer.dumps({"sid": session.sid, "key": session.key_digest})

    def load(self, cookie: str | None) -> BrowserSession | None:
        """Return the session a cookie holds, or None if absent, forged or expired."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.ttl_s)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        key = data.get("key")
        return BrowserSession(sid=data["sid"], key_digest=key if isinstance(key, str) else None)

    def csrf_token(self, session: BrowserSession) -> str:
        """Return the token every form of this session must post back."""
        return hmac.new(self._secret, f"csrf:{session.sid}".encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session: BrowserSession, token: str) -> bool:
        """Return whether a posted token is this session's (in constant time)."""
        return hmac.compare_digest(self.csrf_token(session), token)


def _stamp(clock: Clock) -> Callable[[TimestampSigner], int]:
    def get_timestamp(_signer: TimestampSigner) -> int:
        return int(clock())

    return get_timestamp


def host_name(host_header: str) -> str:
    """Return the name of a Host header without its port: ``[::1]:8000`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    """Return whether a Host header names one of the allowed hosts ('*' admits any)."""
    return "*" in allowed or (bool(host_header) and host_name(host_header) in allowed)


def same_origin(origin: str, *, host_header: str) -> bool:
    """Return whether an Origin (or Referer) URL is the page's own host.

    The scheme is not compared: behind a TLS proxy the app sees http while the browser says
    https; the host name and port are what another site cannot fake.
    """
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host_header.strip().lower()
