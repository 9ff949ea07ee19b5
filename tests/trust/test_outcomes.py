"""Outcomes: recorded once, corrected only on purpose (history kept, latest wins)."""

from __future__ import annotations

import anyio
import pytest

from app.core.db import session_scope
from app.core.errors import ConflictError
from app.trust.models import OutcomeSource
from app.trust.outcomes import OutcomeService
from app.trust.schemas import OutcomeCreate
from app.trust.service import TrustService

from .harness import Served, ask, report, serve

pytestmark = pytest.mark.anyio


async def test_an_outcome_is_recorded_once(database_url: str) -> None:
    async with serve(database_url) as served:
        verdict = await ask(served.client, "deploy")
        first = await report(served.client, verdict["id"], "approve", note="deployed fine")
        assert first.status_code == 201, first.text
        body = first.json()
        assert (body["correct_option"], body["source"], body["revision"]) == (
            "approve",
            "dataset",
            1,
        )
        assert (body["note"], body["supersedes_id"], body["corrected"]) == (
            "deployed fine",
            None,
            False,
        )
        again = await report(served.client, verdict["id"], "reject")
        assert again.status_code == 409
        assert again.json()["outcome_id"] == body["id"]
        assert "corrects" in again.json()["detail"]
        history = (await served.client.get(f"/verdicts/{verdict['id']}/outcomes")).json()
        assert [item["correct_option"] for item in history["items"]] == ["approve"]


async def test_a_correction_keeps_the_history_and_wins(database_url: str) -> None:
    async with serve(database_url) as served:
        verdict_id = (await ask(served.client, "deploy"))["id"]
        first = (await report(served.client, verdict_id, "approve")).json()
        second = await report(
            served.client, verdict_id, "reject", corrects=True, note="rolled back in prod"
        )
        assert second.status_code == 201, second.text
        assert (second.json()["revision"], second.json()["supersedes_id"]) == (2, first["id"])
        stale = await report(served.client, verdict_id, "defer", corrects=first["id"])
        assert stale.status_code == 409
        assert stale.json()["outcome_id"] == second.json()["id"]
        third = await report(served.client, verdict_id, "defer", corrects=second.json()["id"])
        assert third.status_code == 201, third.text

        history = (await served.client.get(f"/verdicts/{verdict_id}/outcomes")).json()
        assert [(i["correct_option"], i["corrected"]) for i in history["items"]] == [
            ("defer", False),
            ("reject", True),
            ("approve", True),
        ]
        assert history["current"]["revision"] == 3
        stats = (await served.client.get("/trust/stats")).json()
        charlie = next(
            c for c in stats["jurors"] if (c["juror"], c["category"]) == ("charlie", "*")
        )
        assert (stats["n_records"], charlie["final"]["successes"]) == (1, 1)
        actions = [e["action"] for e in (await served.client.get("/trust/audit")).json()["items"]]
        assert actions == ["outcome.corrected", "outcome.corrected", "outcome.recorded"]


async def test_options_are_checked(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        verdict_id = (await ask(served.client, "deploy"))["id"]
        unknown = await report(served.client, verdict_id, "maybe")
        assert unknown.status_code == 422
        assert (unknown.json()["error"], unknown.json()["field"]) == (
            "invalid_request",
            "correct_option",
        )
        assert unknown.json()["options"] == ["approve", "reject", "defer"]
        bad_source = await served.client.post(
            f"/verdicts/{verdict_id}/outcome",
            json={"correct_option": "approve", "source": "oracle"},
        )
        assert bad_source.status_code == 422
        # The verdict's own label is stored, whatever the case the caller used.
        accepted = await report(served.client, verdict_id, "APPROVE")
        assert accepted.json()["correct_option"] == "approve"


async def test_unknown_verdict_and_nothing_to_correct(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        missing = await report(served.client, "no-such-verdict", "approve")
        assert missing.status_code == 404
        assert (await served.client.get("/verdicts/no-such-verdict/outcomes")).status_code == 404
        verdict_id = (await ask(served.client, "deploy"))["id"]
        nothing = await report(served.client, verdict_id, "approve", corrects=True)
        assert nothing.status_code == 409
        assert "no outcome to correct" in nothing.json()["detail"]


async def _record(served: Served, verdict_id: str, results: list[str]) -> None:
    body = OutcomeCreate(correct_option="approve", source=OutcomeSource.AGENT)
    try:
        async with session_scope(served.sessionmaker) as session:
            trust = TrustService(session, config=served.runtime.config)
            await OutcomeService(trust).record(verdict_id, body, actor="agent")
        results.append("stored")
    except ConflictError:
        results.append("conflict")


async def test_two_concurrent_first_outcomes_store_one(database_url: str) -> None:
    async with serve(database_url) as served:
        verdict_id = (await ask(served.client, "deploy"))["id"]
        results: list[str] = []
        async with anyio.create_task_group() as group:
            group.start_soon(_record, served, verdict_id, results)
            group.start_soon(_record, served, verdict_id, results)
        assert sorted(results) == ["conflict", "stored"]
        history = (await served.client.get(f"/verdicts/{verdict_id}/outcomes")).json()
        assert len(history["items"]) == 1
