"""Rendering of the review pages: the Jinja2 environment, its filters and one ``page()``.

Links are paths, never absolute URLs: an absolute URL would be built from the request's Host
header, which a client chooses, so a page would repeat whatever name it was asked under.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from app.http.sessions import COOKIE, CSRF_FIELD, BrowserSession, Sessions
from app.security.principal import Principal

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def path_for(request: Request, name: str, /, **params: Any) -> str:
    """Return the path of a named route (with the app's root path), never a full URL."""
    root: str = request.scope.get("root_path", "")
    return root + str(request.app.url_path_for(name, **params))


@pass_context
def _template_path_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
    return path_for(context["request"], name, **params)


templates.env.filters["when"] = _when
templates.env.filters["num"] = _num
templates.env.filters["pct"] = _pct
templates.env.globals["url_for"] = _template_path_for


def sessions_of(request: Request) -> Sessions:
    """Return the app's session signer (built once in ``create_app``)."""
    sessions: Sessions = request.app.state.review_sessions
    return sessions


def _cookie_path(request: Request) -> str:
    return path_for(request, "review_index")


def set_session_cookie(request: Request, response: Response, session: BrowserSession) -> None:
    """Send the session cookie: HttpOnly, SameSite=Strict, Secure over TLS, expiring."""
    sessions = sessions_of(request)
    response.set_cookie(
        COOKIE,
        sessions.dump(session),
        max_age=sessions.ttl_s,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Drop the session cookie (signing out)."""
    response.delete_cookie(
        COOKIE,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with who is signed in and the session's CSRF token; send a new session."""
    session: BrowserSession | None = getattr(request.state, "review_session", None)
    viewer: Principal | None = getattr(request.state, "principal", None)
    csrf = sessions_of(request).csrf_token(session) if session is not None else ""
    response = templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "csrf": csrf, "csrf_field": CSRF_FIELD, **context},
        status_code=status_code,
    )
    if session is not None and session.fresh:
        set_session_cookie(request, response, session)
    return response
