"""Who may see the review pages, and the sign-in that lets a browser in once keys exist.

Every review route first checks the Host header (``JURY_ALLOWED_HOSTS``), then finds its
caller, in this order:

1. a bearer key (scripts and tests; a browser never sends one by itself, so no CSRF check);
2. the signed session cookie of a reviewer who signed in with a reviewer or admin key;
3. nobody: in local mode (no key exists) the local admin, otherwise a page asks to sign in.

Every form posted without a bearer key must carry the session's CSRF token, and its Origin (or,
lacking one, its Referer) must be this server's own host. See ``app.http.sessions``.

    GET  /review/signin    the sign-in form
    POST /review/signin    form fields key, csrf -> 303 /review with the session cookie
    POST /review/signout   form field csrf -> 303 /review/signin, the cookie dropped
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.errors import UnauthorizedError
from app.http.pages import clear_session_cookie, page, path_for, sessions_of, set_session_cookie
from app.http.sessions import (
    COOKIE,
    CSRF_FIELD,
    BrowserSession,
    host_allowed,
    same_origin,
)
from app.security.models import Role
from app.security.principal import LOCAL, Principal, hash_key
from app.security.service import Authenticator

BEARER = "bearer "
MAX_FORM_BYTES = 64_000
REVIEW_ROLES = (Role.REVIEWER,)  # and admins, who hold every role


class PageRefusedError(Exception):
    """A review request refused before any page is rendered (host, origin, token, role)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class SignInRequiredError(Exception):
    """Keys exist and the request carries neither a key nor a signed-in session."""


@dataclass(frozen=True, slots=True)
class PageAccess:
    """The caller of a review request and how it proved itself."""

    principal: Principal
    session: BrowserSession
    by_bearer: bool


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.runtime.auth
    return authenticator


def browser_session(request: Request) -> BrowserSession:
    """Check the Host header, then return the request's session (a new one if it has none)."""
    allowed: tuple[str, ...] = request.app.state.allowed_hosts
    if not host_allowed(request.headers.get("host", ""), allowed):
        # The name asked for is not repeated: the page shows nothing a client chose.
        raise PageRefusedError(400, "This server does not answer to the host name in the request.")
    sessions = sessions_of(request)
    session = sessions.load(request.cookies.get(COOKIE)) or sessions.new()
    request.state.review_session = session
    return session


SessionCookieDep = Annotated[BrowserSession, Depends(browser_session)]


def _bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[len(BEARER) :].strip() if header.lower().startswith(BEARER) else None


async def _caller(request: Request, session: BrowserSession) -> tuple[Principal, bool]:
    """Return the caller and whether a bearer key proved it."""
    authenticator = _authenticator(request)
    key = _bearer_key(request)
    if key is not None:
        return await authenticator.authenticate(key), True
    if session.key_digest is not None:
        try:
            return await authenticator.authenticate_digest(session.key_digest), False
        except UnauthorizedError:
            raise SignInRequiredError from None  # the key was revoked since signing in
    if await authenticator.keys_required():
        raise SignInRequiredError
    return LOCAL, False


async def page_access(request: Request, session: SessionCookieDep) -> PageAccess:
    """Admit reviewers and admins to a review page; others sign in or are refused."""
    principal, by_bearer = await _caller(request, session)
    request.state.principal = principal
    if not principal.may(REVIEW_ROLES):
        raise PageRefusedError(403, f"The '{principal.role}' role may not use the review pages.")
    return PageAccess(principal=principal, session=session, by_bearer=by_bearer)


PageAccessDep = Annotated[PageAccess, Depends(page_access)]


async def read_form(request: Request) -> dict[str, str]:
    """Read a URL-encoded form (the pages post nothing else): each field's first value."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageRefusedError(413, "The form is too large.")
    fields = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def check_form(request: Request, session: BrowserSession, fields: dict[str, str]) -> None:
    """Refuse a form posted from another site or without this session's CSRF token."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is not None and not same_origin(origin, host_header=host):
        raise PageRefusedError(403, "Refused: this form was posted from another site.")
    token = fields.get(CSRF_FIELD, "")
    if session.fresh or not sessions_of(request).csrf_valid(session, token):
        raise PageRefusedError(
            403, "Refused: the form's security token is missing or stale. Reload the page."
        )


async def page_form(request: Request, access: PageAccessDep) -> dict[str, str]:
    """Return a review page's posted form, checked unless a bearer key made the request."""
    fields = await read_form(request)
    if not access.by_bearer:
        check_form(request, access.session, fields)
    return fields


PageFormDep = Annotated[dict[str, str], Depends(page_form)]

router = APIRouter(prefix="/review", tags=["review"], include_in_schema=False)


@router.get("/signin", name="review_signin", response_class=HTMLResponse)
async def signin_page(request: Request, session: SessionCookieDep) -> Response:
    """Show the sign-in form (a page asked for without a session comes here)."""
    return page(request, "signin.html")


@router.post("/signin", name="review_signin_post")
async def signin(request: Request, session: SessionCookieDep) -> Response:
    """Sign in with a reviewer or admin key: a new session, its cookie, and the review home."""
    fields = await read_form(request)
    check_form(request, session, fields)
    key = fields.get("key", "").strip()
    try:
        principal = await _authenticator(request).authenticate(key or None)
    except UnauthorizedError:
        return page(request, "signin.html", status_code=401, error="Unknown or revoked key.")
    if not principal.authenticated:
        # Local mode: there is nobody to sign in as, and nothing to sign in for.
        return RedirectResponse(path_for(request, "review_index"), status_code=303)
    if not principal.may(REVIEW_ROLES):
        error = f"That is an '{principal.role}' key: the review pages need a reviewer key."
        return page(request, "signin.html", status_code=403, error=error)
    response = RedirectResponse(path_for(request, "review_index"), status_code=303)
    set_session_cookie(request, response, sessions_of(request).new(hash_key(key)))
    return response


@router.post("/signout", name="review_signout")
async def signout(request: Request, session: SessionCookieDep) -> Response:
    """Sign out: the cookie is dropped and the sign-in form shown."""
    check_form(request, session, await read_form(request))
    response = RedirectResponse(path_for(request, "review_signin"), status_code=303)
    clear_session_cookie(request, response)
    return response


def install(app: FastAPI) -> None:
    """Show refusals as pages, and send a visitor who must sign in to the sign-in form."""

    @app.exception_handler(PageRefusedError)
    async def _refused(request: Request, exc: PageRefusedError) -> Response:
        return page(request, "refused.html", status_code=exc.status_code, message=exc.message)

    @app.exception_handler(SignInRequiredError)
    async def _sign_in(request: Request, _exc: SignInRequiredError) -> Response:
        if request.method in ("GET", "HEAD"):
            response: Response = RedirectResponse(
                path_for(request, "review_signin"), status_code=303
            )
        else:
            message = "Sign in with a reviewer key first: nothing was changed."
            response = page(request, "refused.html", status_code=401, message=message)
        clear_session_cookie(request, response)
        return response
