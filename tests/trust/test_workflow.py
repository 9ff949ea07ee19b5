"""The whole trust workflow through the API (issue 5's "done when").

200 verdicts from the scripted panel of ``harness`` (alpha always approves, bravo shifts from
approve to reject, charlie always defers), with outcomes chosen per category so that:

    category  approve reject defer   alpha  bravo (final)  charlie
    deploy       55     35    10      0.55      0.35         0.10
    finance      10     40    50      0.10      0.40         0.50

Neutral weights follow bravo (the 1-1-1 tie goes to the most confident juror), right on
35 + 40 = 75 of 200 verdicts, and so does the judge. Cross-validation picks the best single
juror in each category (alpha in deploy, charlie in finance: 55 + 50 = 105 of 200), which beats
the judge there, so the proposal also switches both categories' verdict source to the vote.

On SQLite every verdict is deliberated and every outcome posted over HTTP. On PostgreSQL (where
each of a verdict's ~10 commits is durable, 0.1 s a verdict) the verdicts are stored copies of
one deliberated verdict per category and the outcomes are recorded in one unit of work: the
same rows, the same workflow afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import REVIEWER, Served, approved_version, ask, decide_and_report, seed, serve

pytestmark = pytest.mark.anyio

PLAN = {
    "deploy": {"approve": 55, "reject": 35, "defer": 10},
    "finance": {"approve": 10, "reject": 35, "defer": 55},
}


def _cell(stats: dict[str, Any], juror: str, category: str) -> dict[str, Any]:
    cell: dict[str, Any] = next(
        c for c in stats["jurors"] if (c["juror"], c["category"]) == (juror, category)
    )
    return cell


def _decider(stats: dict[str, Any], decider: str, category: str) -> dict[str, Any]:
    cell: dict[str, Any] = next(
        c for c in stats["deciders"] if (c["decider"], c["category"]) == (decider, category)
    )
    return cell


async def _check_stats(served: Served) -> None:
    stats = (await served.client.get("/trust/stats")).json()
    assert (stats["n_records"], stats["weights_version"], stats["drift"]) == (200, None, [])
    alpha = _cell(stats, "alpha", "deploy")
    assert (alpha["model"], alpha["final"]["successes"], alpha["final"]["n"]) == (
        "scripted",
        55,
        100,
    )
    assert alpha["final"]["lower"] < 0.55 < alpha["final"]["upper"]
    assert alpha["calibration"]["n"] == 100
    bravo = _cell(stats, "bravo", "finance")
    # Bravo said approve in round 1 (right on 10) and reject at the end (right on 35).
    assert (bravo["round1"]["successes"], bravo["final"]["successes"]) == (10, 35)
    assert (bravo["shifts"]["wrong_to_right"], bravo["shifts"]["right_to_wrong"]) == (35, 10)
    assert _decider(stats, "weighted_vote", "*")["accuracy"]["successes"] == 70
    assert _decider(stats, "round1_majority", "deploy")["accuracy"]["successes"] == 55
    deploy_only = (await served.client.get("/trust/stats", params={"category": "deploy"})).json()
    assert (deploy_only["n_records"], deploy_only["categories"]) == (100, ["deploy"])
    judge = _decider(stats, "judge", "*")
    assert (judge["accuracy"]["successes"], judge["calibration"]["n"]) == (70, 200)


async def _workflow(served: Served, ids: dict[str, list[str]]) -> None:
    """Propose, approve, decide under the new version, roll back; check the audit log."""
    client = served.client
    all_ids = ids["deploy"] + ids["finance"]
    await _check_stats(served)

    created = await client.post("/trust/proposals", json={"created_by": "ops-bot"})
    assert created.status_code == 201, created.text
    proposal = created.json()
    assert (proposal["status"], proposal["unsupervised"]) == ("proposed", False)
    deploy, finance = proposal["weights"]["deploy"], proposal["weights"]["finance"]
    assert deploy == {"alpha": 1.0, "bravo": 0.0, "charlie": 0.0}
    assert finance == {"alpha": 0.0, "bravo": 0.0, "charlie": 1.0}
    rules = proposal["rules"]
    assert (rules["deploy"]["rule"], rules["deploy"]["verdict_source"]) == (
        "single:alpha",
        "weighted_vote",
    )
    assert (rules["finance"]["rule"], rules["finance"]["verdict_source"]) == (
        "single:charlie",
        "weighted_vote",
    )
    # Each category's own juror beats the pooled rule (the judge, right on 70 of 200) by a
    # sign test on its 100 items: 55 wins to 35 losses, p = 0.02 in both.
    table = {c["rule"]: c for c in proposal["selection"]["deploy"]["candidates"]}
    assert (table["single:alpha"]["correct"], table["judge"]["correct"]) == (55, 35)
    assert proposal["selection"]["*"]["chosen"] == "judge"
    assert table["single:alpha"]["n"] == 100
    replay = proposal["replay"]
    # The active side of the replay is exactly what the verdicts' own weighted vote decided.
    assert replay["accuracy_active"] == pytest.approx(70 / 200)
    assert replay["accuracy_proposed"] == pytest.approx(110 / 200)
    assert sorted(replay["flipped"]) == sorted(all_ids)
    assert {cell["n"] for cell in proposal["evidence"]["cells"]} == {100, 200}
    # Proposing applies nothing.
    assert (await client.get("/trust/weights")).json()["version"] is None

    approved = await client.post(f"/trust/proposals/{proposal['id']}/approve", json=REVIEWER)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["version"]) == ("approved", 1)
    active = (await client.get("/trust/weights")).json()
    assert active["version"] == 1
    assert active["weights"]["deploy"] == pytest.approx(deploy)

    later = await ask(client, "deploy")
    assert (later["weights_version"], later["baselines"]["weighted_vote"]) == (1, "approve")
    # The judge (reject) is still asked and recorded, but the vote gives the verdict now.
    assert (later["judge"]["verdict"], later["verdict"]) == ("reject", "approve")
    assert later["verdict_source"] == "weighted_vote"
    assert (await ask(client, "finance"))["baselines"]["weighted_vote"] == "defer"

    rolled = await client.post(
        "/trust/weights/rollback",
        json={"version": 0, "reviewer": "rita", "comment": "back to neutral"},
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] is None
    after = await ask(client, "deploy")
    assert (after["weights_version"], after["baselines"]["weighted_vote"]) == (None, "reject")

    audit = (await client.get("/trust/audit", params={"limit": 10})).json()
    steps = [(e["action"], e["actor"], e["subject"]) for e in audit["items"]]
    assert steps[:6] == [
        ("weights.rolled_back", "rita", "weights:0"),
        ("weights.activated", "rita", "weights:0"),
        ("proposal.approved", "rita", f"proposal:{proposal['id']}"),
        ("weights.activated", "rita", "weights:1"),
        ("weights.version_created", "rita", "weights:1"),
        ("proposal.created", "ops-bot", f"proposal:{proposal['id']}"),
    ]
    assert audit["items"][0]["reason"] == "back to neutral"
    assert audit["items"][2]["reason"] == REVIEWER["comment"]
    assert audit["items"][6]["action"] == "outcome.recorded"
    assert audit["total"] == 200 + 6


async def test_done_when_200_verdicts_through_the_api(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        ids = await decide_and_report(served.client, PLAN)
        await _workflow(served, ids)


@pytest.mark.postgres
async def test_workflow_on_postgres(postgres_database: str) -> None:
    async with serve(postgres_database) as served:
        await _workflow(served, await seed(served, PLAN))


async def test_rollback_restores_an_approved_version(database_url: str) -> None:
    async with serve(database_url) as served:
        client = served.client
        await approved_version(served)
        await client.post(
            "/trust/weights/rollback", json={"version": 0, "reviewer": "rita", "comment": "undo"}
        )
        restored = await client.post(
            "/trust/weights/rollback", json={"version": 1, "reviewer": "sam", "comment": "redo"}
        )
        assert restored.json()["version"] == 1
        verdict = await ask(client, "finance")
        assert (verdict["weights_version"], verdict["baselines"]["weighted_vote"]) == (1, "defer")
        versions = (await client.get("/trust/weights/versions")).json()
        assert [(v["version"], v["active"]) for v in versions] == [(1, True)]
        activations = [
            e["detail"]["how"]
            for e in (await client.get("/trust/audit")).json()["items"]
            if e["action"] == "weights.activated"
        ]
        assert activations == ["rollback", "rollback", "approve"]
