"""With no outcome at all, a proposal may come from agreement alone, clearly marked."""

from __future__ import annotations

import pytest

from .harness import ask, clone_verdicts, panel_config, propose, serve

pytestmark = pytest.mark.anyio


def _always(position: str) -> dict[str, object]:
    return {
        "script": {
            "rounds": [{"position": position, "confidence": 0.7, "reasoning": "So I say this."}]
        }
    }


async def test_without_outcomes_the_proposal_is_unsupervised(sqlite_database: str) -> None:
    # Alpha and charlie always agree (approve); bravo always says reject.
    config = panel_config(
        juror_overrides={"bravo": _always("reject"), "charlie": _always("approve")}
    )
    async with serve(sqlite_database, config) as served:
        template = await ask(served.client, "deploy")
        await clone_verdicts(served, template, category="deploy", n=29)

        proposal = await propose(served.client)
        assert proposal["unsupervised"] is True
        assert proposal["evidence"]["method"] == "dawid_skene_one_coin"
        assert "agreement" in proposal["evidence"]["note"]
        assert (proposal["replay"]["n"], proposal["replay"]["accuracy_proposed"]) == (0, None)
        deploy = proposal["weights"]["deploy"]
        assert deploy["alpha"] == deploy["charlie"] > deploy["bravo"]

        refused = await served.client.post("/trust/proposals", json={"unsupervised": False})
        assert refused.status_code == 409
        listed = (await served.client.get("/trust/proposals")).json()["items"]
        assert listed[0]["unsupervised"] is True
