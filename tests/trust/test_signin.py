"""Signing in to the review pages once keys exist, and the checks on every form they post.

Through the in-process client, with a cookie jar like a browser's: the signed session cookie,
its attributes and its expiry, logout, revoked keys, CSRF tokens, Origin and Host checks.
The same flows in a real browser are in test_browser.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.core.db import session_scope
from app.http.sessions import COOKIE, Sessions, host_allowed, host_name, same_origin
from app.security.models import Role
from app.security.service import KeyService
from tests.security.keys import add_keys, bearer

from .harness import SMALL_PLAN, Served, propose, seed, serve

pytestmark = pytest.mark.anyio

ROLES = {"rita": Role.REVIEWER, "ada": Role.ADMIN, "agent-7": Role.AGENT}


@dataclass(frozen=True)
class Keyed:
    """An app with keys on and one pending proposal."""

    served: Served
    keys: dict[str, str]
    proposal_id: int

    @property
    def client(self) -> httpx.AsyncClient:
        """Return the app's client (its cookie jar is the browser's)."""
        return self.served.client


@asynccontextmanager
async def keyed(database_url: str) -> AsyncIterator[Keyed]:
    """Seed a proposal in local mode, then create keys and serve a fresh app (keys on)."""
    async with serve(database_url) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client)
    keys = await add_keys(database_url, ROLES)
    async with serve(database_url) as served:
        yield Keyed(served=served, keys=keys, proposal_id=proposal["id"])


def _csrf(html: str) -> str:
    marker = 'name="csrf" value="'
    assert marker in html, html[:500]
    return html.split(marker, 1)[1].split('"', 1)[0]


async def _sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/review/signin")
    assert form.status_code == 200, form.text
    return await client.post("/review/signin", data={"key": key, "csrf": _csrf(form.text)})


async def _status(keyed: Keyed) -> str:
    response = await keyed.client.get(
        f"/trust/proposals/{keyed.proposal_id}", headers=bearer(keyed.keys["ada"])
    )
    status: str = response.json()["status"]
    return status


def _decision(csrf: str, **extra: str) -> dict[str, Any]:
    return {"reviewer": "someone", "comment": "checked", "csrf": csrf, **extra}


async def test_a_reviewer_signs_in_decides_and_signs_out(sqlite_database: str) -> None:
    async with keyed(sqlite_database) as k:
        client = k.client
        # No key: the page sends the browser to the sign-in form; the stylesheet needs none.
        asked = await client.get("/review")
        assert (asked.status_code, asked.headers["location"]) == (303, "/review/signin")
        assert (await client.get("/review/review.css")).status_code == 200

        signed_in = await _sign_in(client, k.keys["rita"])
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/review")
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/review", "Max-Age=28800"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http here; see the TLS test
        assert k.keys["rita"] not in cookie

        page = await client.get(f"/review/proposals/{k.proposal_id}")
        assert page.status_code == 200
        assert "Signed in as <strong>rita</strong>" in page.text
        url = f"/review/proposals/{k.proposal_id}/approve"
        approved = await client.post(url, data=_decision(_csrf(page.text)))
        assert approved.status_code == 303, approved.text
        assert await _status(k) == "approved"
        audit = (await client.get("/trust/audit", headers=bearer(k.keys["ada"]))).json()
        approval = next(e for e in audit["items"] if e["action"] == "proposal.approved")
        assert approval["actor"] == "rita"  # the key's name, not the form's "someone"

        index = await client.get("/review")
        out = await client.post("/review/signout", data={"csrf": _csrf(index.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/review/signin")
        assert f'{COOKIE}=""' in out.headers["set-cookie"]
        assert (await client.get("/review")).status_code == 303


async def test_only_reviewer_and_admin_keys_sign_in(sqlite_database: str) -> None:
    async with keyed(sqlite_database) as k:
        agent = await _sign_in(k.client, k.keys["agent-7"])
        assert agent.status_code == 403
        assert "the review pages need a reviewer key" in agent.text
        unknown = await _sign_in(k.client, "jury_not-a-key")
        assert unknown.status_code == 401
        assert "Unknown or revoked key." in unknown.text
        assert (await k.client.get("/review")).status_code == 303
        admin = await _sign_in(k.client, k.keys["ada"])
        assert admin.status_code == 303
        assert "Signed in as <strong>ada</strong>" in (await k.client.get("/review")).text


async def test_a_cross_origin_form_is_refused(sqlite_database: str) -> None:
    async with keyed(sqlite_database) as k:
        await _sign_in(k.client, k.keys["rita"])
        page = await k.client.get(f"/review/proposals/{k.proposal_id}")
        url = f"/review/proposals/{k.proposal_id}/approve"
        # Even with the right token (which another site cannot read), another Origin is refused.
        evil = {"Origin": "http://evil.example"}
        refused = await k.client.post(url, data=_decision(_csrf(page.text)), headers=evil)
        assert refused.status_code == 403
        assert "posted from another site" in refused.text
        null = await k.client.post(
            url, data=_decision(_csrf(page.text)), headers={"Origin": "null"}
        )
        assert null.status_code == 403
        # Same origin, no token or a wrong one: refused too.
        same = {"Origin": "http://jury.test"}
        for form in (_decision(""), _decision("0" * 64), {"reviewer": "r", "comment": "c"}):
            missing = await k.client.post(url, data=form, headers=same)
            assert missing.status_code == 403
            assert "security token is missing or stale" in missing.text
        assert await _status(k) == "proposed"


async def test_local_mode_forms_need_a_token_too(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client)
        url = f"/review/proposals/{proposal['id']}/reject"
        # What the cross-origin attack of issue 13 posted: no cookie, no token.
        browser = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served.app), base_url="http://jury.test"
        )
        async with browser:
            attack = await browser.post(
                url, data={"reviewer": "x", "comment": "y"}, headers={"Origin": "http://a.example"}
            )
        assert attack.status_code == 403
        stored = await served.client.get(f"/trust/proposals/{proposal['id']}")
        assert stored.json()["status"] == "proposed"


async def test_a_host_not_allowed_is_refused_and_never_reflected(sqlite_database: str) -> None:
    async with keyed(sqlite_database) as k:
        rebound = {"Host": "rebind.evil.example"}
        for path in ("/review", "/review/signin", f"/review/proposals/{k.proposal_id}"):
            response = await k.client.get(path, headers=rebound)
            assert response.status_code == 400, path
            assert "rebind" not in response.text
            assert "does not answer to the host name" in response.text
        with_key = await k.client.get("/review", headers={**rebound, **bearer(k.keys["rita"])})
        assert with_key.status_code == 400
        # An allowed name with a port is fine; links are paths, never built from the Host.
        page = await k.client.get(
            "/review", headers={"Host": "127.0.0.1:8123", **bearer(k.keys["rita"])}
        )
        assert page.status_code == 200
        assert "127.0.0.1" not in page.text
        for attribute in ("href", "src", "action"):
            assert f'{attribute}="http' not in page.text


async def test_a_revoked_key_ends_its_session(sqlite_database: str) -> None:
    async with keyed(sqlite_database) as k:
        await _sign_in(k.client, k.keys["rita"])
        assert (await k.client.get("/review")).status_code == 200
        async with session_scope(k.served.sessionmaker) as session:
            await KeyService(session).revoke("rita")
        k.served.runtime.auth.forget()  # what the key API does after a revocation
        after = await k.client.get("/review")
        assert (after.status_code, after.headers["location"]) == (303, "/review/signin")


async def test_the_cookie_is_secure_over_tls(sqlite_database: str) -> None:
    async with keyed(sqlite_database) as k:
        tls = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=k.served.app), base_url="https://jury.test"
        )
        async with tls:
            signed_in = await _sign_in(tls, k.keys["rita"])
        assert signed_in.status_code == 303
        assert "Secure" in signed_in.headers["set-cookie"]


def test_a_session_expires_and_a_forged_one_is_refused() -> None:
    now = [1_000_000.0]
    sessions = Sessions("s3cret", ttl_s=3600, clock=lambda: now[0])
    cookie = sessions.dump(sessions.new("digest"))
    assert sessions.load(cookie) is not None
    assert sessions.load(cookie).key_digest == "digest"  # type: ignore[union-attr]
    now[0] += 3600
    assert sessions.load(cookie) is not None
    now[0] += 2
    assert sessions.load(cookie) is None
    other = Sessions("another secret", ttl_s=3600, clock=lambda: now[0])
    assert other.load(other.dump(other.new("digest"))) is not None
    assert sessions.load(other.dump(other.new("digest"))) is None
    assert sessions.load("garbage") is None


def test_csrf_tokens_belong_to_their_session() -> None:
    sessions = Sessions("s3cret", ttl_s=60)
    one, two = sessions.new(), sessions.new()
    assert sessions.csrf_valid(one, sessions.csrf_token(one))
    assert not sessions.csrf_valid(two, sessions.csrf_token(one))


@pytest.mark.parametrize(
    ("header", "name"),
    [("LocalHost:8000", "localhost"), ("[::1]:9000", "::1"), ("::1", "::1"), ("a.b", "a.b")],
)
def test_host_names_drop_their_port(header: str, name: str) -> None:
    assert host_name(header) == name


def test_hosts_and_origins() -> None:
    loopback = ("localhost", "127.0.0.1", "::1")
    assert host_allowed("127.0.0.1:8000", loopback)
    assert not host_allowed("127.0.0.1.evil.example", loopback)
    assert not host_allowed("", loopback)
    assert host_allowed("anything", ("*",))
    assert same_origin("http://127.0.0.1:8000", host_header="127.0.0.1:8000")
    assert same_origin("https://jury.example/review", host_header="jury.example")
    assert not same_origin("http://127.0.0.1:8001", host_header="127.0.0.1:8000")
    assert not same_origin("null", host_header="127.0.0.1:8000")
