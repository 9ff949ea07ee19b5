"""Review: only a pending proposal can be decided, once; superseding; rollback guards."""

from __future__ import annotations

import anyio
import pytest

from app.core.db import session_scope
from app.core.errors import ConflictError
from app.trust.service import TrustService

from .harness import REVIEWER, SMALL_PLAN, Served, propose, seed, serve

pytestmark = pytest.mark.anyio


async def test_a_decided_proposal_cannot_be_decided_again(database_url: str) -> None:
    async with serve(database_url) as served:
        client = served.client
        await seed(served, SMALL_PLAN)
        proposal = await propose(client)
        url = f"/trust/proposals/{proposal['id']}"
        rejected = await client.post(f"{url}/reject", json={"reviewer": "rita", "comment": "no"})
        assert rejected.status_code == 200, rejected.text
        assert (rejected.json()["status"], rejected.json()["decided_by"]) == ("rejected", "rita")
        for action in ("approve", "reject"):
            again = await client.post(f"{url}/{action}", json=REVIEWER)
            assert again.status_code == 409
            assert again.json()["status"] == "rejected"
        assert (await client.get("/trust/weights")).json()["version"] is None
        assert (await client.post("/trust/proposals/999/approve", json=REVIEWER)).status_code == 404
        assert (await client.get("/trust/proposals/999")).status_code == 404


async def test_decisions_need_a_reviewer_and_a_comment(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client)
        url = f"/trust/proposals/{proposal['id']}/approve"
        blank = await served.client.post(url, json={"reviewer": "rita", "comment": "  "})
        assert blank.status_code == 422
        assert blank.json()["fields"][0]["field"] == "comment"
        missing = await served.client.post(url, json={"comment": "fine"})
        assert missing.status_code == 422
        rollback_kind = await served.client.post("/trust/proposals", json={"kind": "rollback"})
        assert rollback_kind.status_code == 422


async def test_a_new_proposal_supersedes_the_pending_one(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        await seed(served, SMALL_PLAN)
        first = await propose(client)
        calibration = await propose(client, kind="calibration")
        second = await propose(client, shrinkage=0)
        assert (await client.get(f"/trust/proposals/{first['id']}")).json()["status"] == (
            "superseded"
        )
        # Only proposals of the same kind are superseded by a new proposal...
        assert (await client.get(f"/trust/proposals/{calibration['id']}")).json()["status"] == (
            "proposed"
        )
        approved = await client.post(f"/trust/proposals/{second['id']}/approve", json=REVIEWER)
        assert approved.status_code == 200
        # ...but an approval retires every pending one: they compared against the old set.
        assert (await client.get(f"/trust/proposals/{calibration['id']}")).json()["status"] == (
            "superseded"
        )
        page = (await client.get("/trust/proposals", params={"status": "superseded"})).json()
        assert sorted(item["id"] for item in page["items"]) == sorted(
            [first["id"], calibration["id"]]
        )
        listed = (await client.get("/trust/proposals")).json()["items"][0]
        assert (listed["id"], listed["status"], listed["version"]) == (second["id"], "approved", 1)
        assert listed["accuracy_proposed"] > listed["accuracy_active"]


async def _approve(served: Served, proposal_id: int, results: list[str]) -> None:
    try:
        async with session_scope(served.sessionmaker) as session:
            trust = TrustService(session, config=served.runtime.config)
            await trust.approve(proposal_id, reviewer="rita", comment="concurrent")
        results.append("approved")
    except ConflictError:
        results.append("conflict")


async def test_two_concurrent_approvals_one_wins(database_url: str) -> None:
    async with serve(database_url) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client)
        results: list[str] = []
        async with anyio.create_task_group() as group:
            group.start_soon(_approve, served, proposal["id"], results)
            group.start_soon(_approve, served, proposal["id"], results)
        assert sorted(results) == ["approved", "conflict"]
        versions = (await served.client.get("/trust/weights/versions")).json()
        assert [v["version"] for v in versions] == [1]
        audit = (await served.client.get("/trust/audit")).json()["items"]
        assert [e["action"] for e in audit].count("proposal.approved") == 1


async def test_rollback_guards(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        body = {"reviewer": "rita", "comment": "why not"}
        unknown = await client.post("/trust/weights/rollback", json={"version": 7, **body})
        assert unknown.status_code == 404
        already = await client.post("/trust/weights/rollback", json={"version": 0, **body})
        assert already.status_code == 409
        negative = await client.post("/trust/weights/rollback", json={"version": -1, **body})
        assert negative.status_code == 422


async def test_nothing_to_learn_from(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        empty = await served.client.post("/trust/proposals", json={})
        assert empty.status_code == 409
        calibration = await served.client.post("/trust/proposals", json={"kind": "calibration"})
        assert calibration.status_code == 409
