"""Every route of the app against every role: no key 401, wrong role 403, right role admitted.

The routes are read from ``app.routes``, so a route added without an entry here fails
``test_every_route_has_a_matrix_entry`` until someone decides who may call it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route

from app.http.app import create_app
from app.security.models import Role
from tests.builders import make_settings, scripted_config, serving, step
from tests.security.keys import add_keys, bearer

pytestmark = pytest.mark.anyio

PUBLIC = frozenset[Role]()  # no key needed at all
AGENT = frozenset({Role.AGENT, Role.ADMIN})
READER = frozenset({Role.AGENT, Role.REVIEWER, Role.ADMIN})
REVIEWER = frozenset({Role.REVIEWER, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})

# (method, path template) -> the roles admitted; PUBLIC: open to anyone, key or not.
MATRIX: dict[tuple[str, str], frozenset[Role]] = {
    # Probes and scrapers carry no key; the API's own documentation is public.
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # Verdicts: agents ask and read their own; reviewers read all.
    ("POST", "/verdict"): AGENT,
    ("GET", "/verdicts"): READER,
    ("GET", "/verdicts/{verdict_id}"): READER,
    ("GET", "/verdicts/{verdict_id}/events"): READER,
    ("POST", "/verdicts/{verdict_id}/outcome"): READER,
    ("GET", "/verdicts/{verdict_id}/outcomes"): READER,
    # The trust workflow is the reviewers'.
    ("GET", "/trust/stats"): REVIEWER,
    ("GET", "/trust/weights"): REVIEWER,
    ("GET", "/trust/weights/versions"): REVIEWER,
    ("POST", "/trust/weights/rollback"): REVIEWER,
    ("POST", "/trust/proposals"): REVIEWER,
    ("GET", "/trust/proposals"): REVIEWER,
    ("GET", "/trust/proposals/{proposal_id}"): REVIEWER,
    ("POST", "/trust/proposals/{proposal_id}/approve"): REVIEWER,
    ("POST", "/trust/proposals/{proposal_id}/reject"): REVIEWER,
    ("POST", "/trust/rollback-check"): REVIEWER,
    ("GET", "/trust/audit"): REVIEWER,
    # The review pages (app/http/review.py) act on the trust workflow: reviewers'. A browser
    # without a key is sent to the sign-in form (see SIGN_IN_REDIRECT).
    ("GET", "/review"): REVIEWER,
    ("GET", "/review/review.css"): PUBLIC,
    ("GET", "/review/signin"): PUBLIC,
    ("POST", "/review/signin"): PUBLIC,
    ("POST", "/review/signout"): PUBLIC,
    ("GET", "/review/proposals/{proposal_id}"): REVIEWER,
    ("POST", "/review/proposals/{proposal_id}/approve"): REVIEWER,
    ("POST", "/review/proposals/{proposal_id}/reject"): REVIEWER,
    ("POST", "/review/weights/rollback"): REVIEWER,
    ("GET", "/review/verdicts/{verdict_id}"): REVIEWER,
    # Keys and the configuration are the admins'.
    ("GET", "/admin/keys"): ADMIN,
    ("POST", "/admin/keys"): ADMIN,
    ("POST", "/admin/keys/{key}/revoke"): ADMIN,
    ("GET", "/admin/config"): ADMIN,
}

# Pages a browser opens: without a key it is redirected to sign in, not answered 401.
SIGN_IN_REDIRECT = frozenset(
    path
    for (method, path), roles in MATRIX.items()
    if method == "GET" and path.startswith("/review") and roles == REVIEWER
)
# Forms anyone may post, but only with the CSRF token of a page they opened (the matrix posts
# none): refused with 403 whoever the caller.
NEEDS_TOKEN = frozenset({("POST", "/review/signin"), ("POST", "/review/signout")})

PATH_VALUES = {"verdict_id": "no-such-verdict", "proposal_id": "999", "key": "no-such-key"}


@dataclass(frozen=True)
class Endpoint:
    """One method on one route."""

    method: str
    path: str

    def url(self) -> str:
        """Return the path with every parameter filled in."""
        return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES.get(m[1], "x"), self.path)


def endpoints(app: FastAPI) -> set[Endpoint]:
    """Return every method of every route the app serves (HEAD aside), routers included.

    FastAPI includes routers lazily: ``iter_route_contexts`` walks into them.
    """
    found: set[Endpoint] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            found.add(Endpoint("MOUNT", route.path))
        elif isinstance(route, APIRoute | Route) and context.path is not None:
            methods = (context.methods or set()) - {"HEAD"}
            found |= {Endpoint(method, context.path) for method in methods}
        else:
            found.add(Endpoint(type(route).__name__, str(context.path)))
    return found


def test_every_route_has_a_matrix_entry() -> None:
    served = {(e.method, e.path) for e in endpoints(create_app(make_settings("sqlite://")))}

    missing = sorted(served - set(MATRIX))
    stale = sorted(set(MATRIX) - served)

    assert not missing, f"routes with no entry in the role matrix: {missing}"
    assert not stale, f"matrix entries for routes that do not exist: {stale}"


@pytest.fixture
async def keyed(sqlite_database: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """Return a client on an app with one key per role, so that keys are required."""
    keys = await add_keys(
        sqlite_database,
        {role.value: role for role in Role},
    )
    config = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )
    settings = make_settings(sqlite_database, allowed_hosts=("jury.test",))
    async with serving(create_app(settings, config=config)) as client:
        yield client, keys


async def test_each_route_admits_exactly_its_roles(
    keyed: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = keyed
    app_endpoints = endpoints(create_app(make_settings("sqlite://")))
    failures: list[str] = []
    for endpoint in sorted(app_endpoints, key=lambda e: (e.path, e.method)):
        allowed = MATRIX[(endpoint.method, endpoint.path)]
        for who in (None, *Role):
            headers = bearer(keys[who.value]) if who is not None else {}
            response = await client.request(
                endpoint.method,
                endpoint.url(),
                headers=headers,
                json={} if endpoint.method == "POST" else None,
            )
            expected = _expected(allowed, who)
            if (endpoint.method, endpoint.path) in NEEDS_TOKEN:
                expected = _refused_without_a_token
            elif who is None and endpoint.path in SIGN_IN_REDIRECT:
                expected = _redirected_to_sign_in
            if not expected(response.status_code):
                failures.append(
                    f"{endpoint.method} {endpoint.path} as {who or 'no key'}: "
                    f"{response.status_code} {response.text[:120]}"
                )
    assert not failures, "\n".join(failures)


def _refused_without_a_token(status: int) -> bool:
    return status == 403


def _redirected_to_sign_in(status: int) -> bool:
    return status == 303


def _expected(allowed: frozenset[Role], who: Role | None) -> Callable[[int], bool]:
    """Return the check of a status: refused with 401/403, or admitted (any other status)."""
    if allowed == PUBLIC or (who is not None and who in allowed):
        return lambda status: status not in (401, 403) and status < 500
    if who is None:
        return lambda status: status == 401
    return lambda status: status == 403


async def test_refusals_say_why(keyed: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    client, keys = keyed

    anonymous = await client.get("/verdicts")
    unknown = await client.get("/verdicts", headers=bearer("jury_not-a-key"))
    wrong_role = await client.post("/trust/proposals", json={}, headers=bearer(keys["agent"]))

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"] == "unauthorized"
    assert "Authorization: Bearer" in anonymous.json()["detail"]
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "unknown or revoked API key"
    assert wrong_role.status_code == 403
    assert wrong_role.json() == {
        "error": "forbidden",
        "detail": "the 'agent' role may not do this; it needs one of: admin, reviewer",
        "role": "agent",
    }


async def test_the_openapi_document_declares_the_bearer_scheme(
    keyed: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, _ = keyed

    document = (await client.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in document["paths"]["/verdict"]["post"]["security"]
    assert "security" not in document["paths"]["/healthz"]["get"]
