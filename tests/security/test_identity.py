"""Who the caller is decides what it sees and what the record says it did.

Agents read and report on their own verdicts only; the authenticated key's name, not the body,
is the actor of every trust step; no reviewer approves their own proposal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.http.app import create_app
from app.security.models import Role
from app.verdicts.record.tables import Verdict
from tests.builders import make_settings, scripted_config, serving, step
from tests.security.keys import add_keys, bearer

pytestmark = pytest.mark.anyio

KEYS = {
    "agent-a": Role.AGENT,
    "agent-b": Role.AGENT,
    "rita": Role.REVIEWER,
    "sam": Role.REVIEWER,
    "ops": Role.ADMIN,
}


@dataclass(frozen=True)
class Keyed:
    """A client on an app with the keys of ``KEYS``."""

    client: httpx.AsyncClient
    keys: dict[str, str]
    app: Any

    async def call(self, who: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request with ``who``'s key."""
        return await self.client.request(method, url, headers=bearer(self.keys[who]), **kwargs)

    async def ask(self, who: str) -> dict[str, Any]:
        """Decide a verdict as ``who`` and return it."""
        response = await self.call(who, "POST", "/verdict", json={"question": "Ship it?"})
        assert response.status_code == 200, response.text
        verdict: dict[str, Any] = response.json()
        return verdict


@pytest.fixture
async def keyed(database_url: str) -> AsyncIterator[Keyed]:
    """Return a keyed app on the test database, with a quick unanimous scripted panel."""
    keys = await add_keys(database_url, KEYS)
    config = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )
    app = create_app(make_settings(database_url), config=config)
    async with serving(app) as client:
        yield Keyed(client=client, keys=keys, app=app)


async def test_an_agent_sees_only_its_own_verdicts(keyed: Keyed) -> None:
    mine = await keyed.ask("agent-a")
    theirs = await keyed.ask("agent-b")

    own = await keyed.call("agent-a", "GET", f"/verdicts/{mine['id']}")
    other = await keyed.call("agent-a", "GET", f"/verdicts/{theirs['id']}")
    listed = await keyed.call("agent-a", "GET", "/verdicts")
    for_reviewer = await keyed.call("rita", "GET", "/verdicts")
    for_admin = await keyed.call("ops", "GET", f"/verdicts/{theirs['id']}")

    assert own.status_code == 200
    assert other.status_code == 404
    assert other.json()["error"] == "not_found"
    assert [item["id"] for item in listed.json()["items"]] == [mine["id"]]
    assert listed.json()["total"] == 1
    assert {item["id"] for item in for_reviewer.json()["items"]} == {mine["id"], theirs["id"]}
    assert for_admin.status_code == 200


async def test_the_verdict_row_records_the_key_that_asked(keyed: Keyed) -> None:
    verdict = await keyed.ask("agent-a")

    async with keyed.app.state.runtime.sessionmaker() as session:
        row = await session.get(Verdict, verdict["id"])

    assert row is not None
    assert row.api_key_id is not None
    assert keyed.app.state.runtime.auth.required


async def test_an_agent_reports_outcomes_of_its_own_verdicts_only(keyed: Keyed) -> None:
    mine = await keyed.ask("agent-a")
    theirs = await keyed.ask("agent-b")
    body = {"correct_option": "approve", "source": "agent", "reported_by": "someone-else"}

    own = await keyed.call("agent-a", "POST", f"/verdicts/{mine['id']}/outcome", json=body)
    other = await keyed.call("agent-a", "POST", f"/verdicts/{theirs['id']}/outcome", json=body)
    history = await keyed.call("agent-a", "GET", f"/verdicts/{theirs['id']}/outcomes")
    audit = await keyed.call("rita", "GET", "/trust/audit")

    assert own.status_code == 201, own.text
    assert other.status_code == 404
    assert history.status_code == 404
    [entry] = [e for e in audit.json()["items"] if e["action"] == "outcome.recorded"]
    assert entry["actor"] == "agent-a"


async def test_a_reviewer_cannot_approve_their_own_proposal(keyed: Keyed) -> None:
    await keyed.ask("agent-a")
    created = await keyed.call(
        "rita", "POST", "/trust/proposals", json={"created_by": "somebody-else"}
    )
    assert created.status_code == 201, created.text
    proposal = created.json()
    url = f"/trust/proposals/{proposal['id']}"
    decision = {"reviewer": "sam", "comment": "looks right to me"}

    own = await keyed.call("rita", "POST", f"{url}/approve", json=decision)
    other = await keyed.call("sam", "POST", f"{url}/approve", json={**decision, "reviewer": "x"})

    assert proposal["created_by"] == "rita"
    assert own.status_code == 403
    assert own.json()["error"] == "forbidden"
    assert "'rita' created proposal" in own.json()["detail"]
    assert other.status_code == 200, other.text
    assert (other.json()["status"], other.json()["decided_by"]) == ("approved", "sam")


async def test_in_local_mode_the_named_reviewer_cannot_approve_their_own_proposal(
    sqlite_database: str,
) -> None:
    config = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )
    async with serving(create_app(make_settings(sqlite_database), config=config)) as client:
        await client.post("/verdict", json={"question": "Ship it?"})
        proposal = (await client.post("/trust/proposals", json={"created_by": "rita"})).json()
        url = f"/trust/proposals/{proposal['id']}/approve"
        own = await client.post(url, json={"reviewer": "rita", "comment": "mine"})
        other = await client.post(url, json={"reviewer": "sam", "comment": "checked"})

    assert own.status_code == 403
    assert (other.status_code, other.json()["decided_by"]) == (200, "sam")
