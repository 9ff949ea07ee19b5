"""Rollback trigger: a clear drop in accuracy after an approval proposes a rollback.

Before the approval the neutral weighted vote was right on 15 of the 40 seeded verdicts. The
approved weights follow alpha in deploy ("approve"); when every later deploy verdict turns out
to be "reject", the weighted vote is right on none of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import REVIEWER, Served, approved_version, ask, clone_verdicts, record_outcomes, serve

pytestmark = pytest.mark.anyio


async def _later_verdicts(served: Served, n: int) -> list[str]:
    template = await ask(served.client, "deploy")
    assert (template["weights_version"], template["baselines"]["weighted_vote"]) == (1, "approve")
    return [template["id"], *await clone_verdicts(served, template, category="deploy", n=n - 1)]


async def _rollbacks(served: Served) -> list[dict[str, Any]]:
    page = (await served.client.get("/trust/proposals", params={"kind": "rollback"})).json()
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_a_clear_drop_proposes_a_rollback_once(database_url: str) -> None:
    async with serve(database_url) as served:
        await approved_version(served)
        later = await _later_verdicts(served, 40)
        # 29 wrong outcomes are not enough evidence (the policy asks for 30)...
        await record_outcomes(served, dict.fromkeys(later[:29], "reject"))
        assert await _rollbacks(served) == []
        # ...the 30th is, and the next ones do not propose it again.
        response = await served.client.post(
            f"/verdicts/{later[29]}/outcome", json={"correct_option": "reject", "source": "agent"}
        )
        assert response.json()["rollback_proposal_id"] is not None
        await record_outcomes(served, dict.fromkeys(later[30:], "reject"))
        [summary] = await _rollbacks(served)
        assert summary["id"] == response.json()["rollback_proposal_id"]

        proposal = (await served.client.get(f"/trust/proposals/{summary['id']}")).json()
        assert (proposal["status"], proposal["created_by"]) == ("proposed", "system")
        assert (proposal["base_version"], proposal["target_version"]) == (1, 0)
        assert proposal["evidence"]["probability_worse"] > 0.95
        assert (proposal["evidence"]["after"]["successes"], proposal["evidence"]["after"]["n"]) == (
            0,
            30,
        )
        assert "0/30" in proposal["reason"]
        assert proposal["weights"] == {}
        # The weights stay in force until a reviewer decides.
        assert (await served.client.get("/trust/weights")).json()["version"] == 1

        approved = await served.client.post(
            f"/trust/proposals/{summary['id']}/approve", json=REVIEWER
        )
        assert approved.status_code == 200, approved.text
        assert (await served.client.get("/trust/weights")).json()["version"] is None
        subject = f"proposal:{summary['id']}"
        audit = (await served.client.get("/trust/audit", params={"subject": subject})).json()
        steps = [(e["action"], e["actor"]) for e in audit["items"]]
        assert steps == [("proposal.approved", "rita"), ("proposal.created", "system")]


async def test_no_rollback_while_the_new_weights_do_well(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        await approved_version(served)
        later = await _later_verdicts(served, 35)
        await record_outcomes(served, dict.fromkeys(later, "approve"))
        assert await _rollbacks(served) == []
        check = await served.client.post("/trust/rollback-check")
        assert (check.status_code, check.json()) == (200, None)
